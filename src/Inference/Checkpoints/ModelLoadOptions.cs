using Gpt2Orleans.Inference.Quantization;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>How to load a checkpoint: where, in which compute dtype, and whether every tensor must match (HF's strict loading).</summary>
public sealed record ModelLoadOptions
{
    public string Device { get; init; } = "cpu";
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>Strict (default): missing, unexpected or mis-shaped tensors are an error. Otherwise missing
    /// parameters are initialised as HF does and reported through <see cref="Log"/>.</summary>
    public bool Strict { get; init; } = true;
    public Action<string>? Log { get; init; }
    /// <summary>Quantize the projections and the LM head at load (a checkpoint already quantized so loads as it is).</summary>
    public QuantizationConfig? Quantization { get; init; }
}
