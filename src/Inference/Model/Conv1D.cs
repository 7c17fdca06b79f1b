using Gpt2Orleans.Inference.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// HF's <c>Conv1D</c>: a linear layer whose weight is named and shaped [in, out] and applied as x @ W + b.
/// The memory behind <see cref="weight"/> is laid out [out, in] (the parameter is a transposed view), so a decode
/// step can stream each output's weights contiguously (<see cref="CpuMatVec"/>); checkpoints still load by name
/// and shape, transposed once at load. Once quantized the dense weight is gone (<see cref="Quantized"/>, [out, in]).
/// </summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>, IQuantizable
{
    public Parameter? weight; // [nx, nf], a view of _weightOutIn; null once quantized
    private Tensor? _weightOutIn; // [nf, nx] contiguous
    public readonly Parameter bias;   // [nf]
    private readonly long _nf, _nx;

    public Conv1D(long nf, long nx, ScalarType dtype, Device device) : base(nameof(Conv1D))
    {
        _nf = nf;
        _nx = nx;
        _weightOutIn = torch.empty([nf, nx], dtype, device).DetachFromDisposeScope();
        weight = new Parameter(_weightOutIn.t().DetachFromDisposeScope(), requires_grad: false);
        bias = Parameters.Empty([nf], dtype, device);
        RegisterComponents();
    }

    /// <summary>The weight's memory as [out, in], contiguous (what the CPU kernels stream); null once quantized.</summary>
    internal Tensor? WeightOutIn => _weightOutIn;

    public QuantizedWeight? Quantized { get; private set; }

    public (int Out, int In) WeightShape => ((int)_nf, (int)_nx);

    public Tensor DenseWeightOutIn => _weightOutIn ?? throw new InvalidOperationException("the weight is quantized");

    public void Adopt(QuantizedWeight quantized)
    {
        IQuantizable.CheckShape(this, quantized);
        Quantized = quantized;
        ConditionallyRegisterParameter(nameof(weight), (Parameter?)null);
        ConditionallyRegisterBuffer(nameof(_weightOutIn), null);
        weight?.Dispose();
        _weightOutIn?.Dispose();
        (weight, _weightOutIn) = (null, null);
    }

    /// <summary>The dense forward: libtorch's addmm, differentiable (bf16 weights without a gradient: float32 slices, <see cref="SlicedFloat32Linear"/>).</summary>
    public override Tensor forward(Tensor x) => forward(x, KernelPolicy.Dense);

    /// <summary>The product as <paramref name="policy"/> says (the paged forward passes its engine's).</summary>
    internal Tensor forward(Tensor x, KernelPolicy policy)
    {
        if (Quantized is { } quantized) return QuantizedProjection.Apply(quantized, x, bias, policy);
        if (policy.UsesMatVec(x, _weightOutIn!)) return CpuMatVec.Apply(x, _weightOutIn!, bias);
        if (SlicedFloat32Linear.Serves(x, weight!)) return SlicedFloat32Linear.Dense(x, _weightOutIn!, bias, policy.MinRows);
        var shape = x.shape;
        var outShape = shape.ToArray();
        outShape[^1] = _nf;
        using var flat = x.reshape(-1, shape[^1]);
        using var result = BatchInvariantMatmul.Addmm(bias, flat, weight!, policy.MinRows);
        return result.view(outShape); // (..., nf)
    }
}
