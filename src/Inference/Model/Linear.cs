using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// PyTorch's <c>nn.Linear</c> (weight [out, in]) for the task heads, allocated empty: TorchSharp's own Linear
/// initialises randomly at construction, wasted work when a checkpoint overwrites it.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight;
    public readonly Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device device) : base(nameof(Linear))
    {
        weight = Parameters.Empty([outFeatures, inFeatures], dtype, device);
        if (hasBias) bias = Parameters.Empty([outFeatures], dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight, bias);
}
