using Gpt2Orleans.Inference.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// PyTorch's <c>nn.Linear</c> (weight [out, in]) for the task heads, allocated empty: TorchSharp's own Linear
/// initialises randomly at construction, wasted work when a checkpoint overwrites it. An untied LM head can be quantized.
/// </summary>
public sealed class Linear : QuantizableModule
{
    public readonly Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device device) : base(nameof(Linear), outFeatures, inFeatures, dtype, device)
    {
        if (hasBias) bias = Parameters.Empty([outFeatures], dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        Quantized is { } quantized ? QuantizedProjection.Apply(quantized, x, bias, KernelPolicy.Dense) : nn.functional.linear(x, weight!, bias);
}
