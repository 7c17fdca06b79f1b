using Gpt2Orleans.Inference.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// PyTorch's <c>nn.Linear</c> (weight [out, in]) for the task heads, allocated empty: TorchSharp's own Linear
/// initialises randomly at construction, wasted work when a checkpoint overwrites it. An untied LM head can be quantized.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>, IQuantizable
{
    public Parameter? weight; // null once quantized
    public readonly Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device device) : base(nameof(Linear))
    {
        weight = Parameters.Empty([outFeatures, inFeatures], dtype, device);
        if (hasBias) bias = Parameters.Empty([outFeatures], dtype, device);
        WeightShape = ((int)outFeatures, (int)inFeatures);
        RegisterComponents();
    }

    public QuantizedWeight? Quantized { get; private set; }

    public (int Out, int In) WeightShape { get; }

    public Tensor DenseWeightOutIn => weight ?? throw new InvalidOperationException("the weight is quantized");

    public void Adopt(QuantizedWeight quantized)
    {
        IQuantizable.CheckShape(this, quantized);
        Quantized = quantized;
        ConditionallyRegisterParameter(nameof(weight), (Parameter?)null);
        weight?.Dispose();
        weight = null;
    }

    public override Tensor forward(Tensor x) =>
        Quantized is { } quantized ? QuantizedProjection.Apply(quantized, x, bias, KernelPolicy.Dense) : nn.functional.linear(x, weight!, bias);
}
