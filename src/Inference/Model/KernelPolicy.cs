using Gpt2Orleans.Inference.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// How a paged forward pass multiplies, chosen per engine by its model runner (never process-wide state, so two
/// engines in one silo can differ): batch-invariant products (<see cref="BatchInvariantMatmul"/>), and whether our
/// CPU mat-vec kernel serves steps of few rows (<see cref="CpuMatVec"/>). The dense forward (training, reference)
/// always multiplies through libtorch, which autograd can differentiate.
/// </summary>
internal sealed record KernelPolicy(bool BatchInvariant, bool MatVecKernel)
{
    public static readonly KernelPolicy Fast = new(BatchInvariant: false, MatVecKernel: true);
    /// <summary>The dense forward's: libtorch alone, one row at a time.</summary>
    public static readonly KernelPolicy Dense = new(BatchInvariant: false, MatVecKernel: false);

    /// <summary>Fewest rows each libtorch multiply works on.</summary>
    public int MinRows => BatchInvariant ? BatchInvariantMatmul.KernelRows : 1;

    /// <summary>
    /// Whether the mat-vec kernel computes x · Wᵀ. Never under batch invariance: its sums round differently from
    /// libtorch's padded GEMM, so a sequence's result would change when the batch outgrows the kernel.
    /// </summary>
    public bool UsesMatVec(Tensor x, Tensor weightOutIn) => MatVecKernel && !BatchInvariant && CpuMatVec.Applies(x, weightOutIn);

    /// <summary>
    /// Whether a quantized product of <paramref name="rows"/> rows runs in <see cref="QuantizedMatVec"/> (whose integer
    /// kernel rounds the inputs to int8 below four rows): not under batch invariance, whose products must round the
    /// same at every batch size.
    /// </summary>
    public bool UsesQuantizedKernel(Device device, long rows) =>
        MatVecKernel && !BatchInvariant && QuantizedMatVec.Supported && device.type == DeviceType.CPU && rows <= CpuMatVec.MaxRows;

    /// <summary>Whether a whole step of <paramref name="tokens"/> rows runs in the kernel (so libtorch can be held to one thread).</summary>
    public bool MatVecStep(ScalarType dtype, Device device, long tokens) => MatVecKernel && !BatchInvariant && CpuMatVec.Serves(dtype, device, tokens);
}
