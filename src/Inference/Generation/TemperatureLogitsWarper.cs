using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>TemperatureLogitsWarper</c>: scores / temperature.</summary>
public sealed class TemperatureLogitsWarper(double temperature) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores) => scores / temperature;
}
