using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>LayerNorm over the last dimension, with parameters allocated empty (the checkpoint fills them).</summary>
public sealed class LayerNorm : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight;
    public readonly Parameter bias;
    private readonly long[] _shape;
    private readonly double _eps;

    public LayerNorm(long size, double eps, ScalarType dtype, Device device) : base(nameof(LayerNorm))
    {
        _shape = [size];
        _eps = eps;
        weight = Parameters.Filled([size], 1.0, dtype, device);
        bias = Parameters.Filled([size], 0.0, dtype, device);
        RegisterComponents();
    }

    internal double Eps => _eps;

    public override Tensor forward(Tensor x) => nn.functional.layer_norm(x, _shape, weight, bias, _eps);
}
