using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>HF's <c>Conv1D</c>: a linear layer whose weight is stored as [in, out] and applied as x @ W + b.</summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight; // [nx, nf]
    public readonly Parameter bias;   // [nf]
    private readonly long _nf;

    public Conv1D(long nf, long nx, ScalarType dtype, Device device) : base(nameof(Conv1D))
    {
        _nf = nf;
        weight = Parameters.Empty([nx, nf], dtype, device);
        bias = Parameters.Empty([nf], dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var shape = x.shape;
        var outShape = shape.ToArray();
        outShape[^1] = _nf;
        using var flat = x.reshape(-1, shape[^1]);
        using var result = torch.addmm(bias, flat, weight, 1, 1);
        return result.view(outShape); // (..., nf)
    }
}
