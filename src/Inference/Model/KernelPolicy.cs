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
    public bool UsesMatVec(Tensor x, Tensor weightOutIn) =>
        MatVecKernel && !BatchInvariant && CpuMatVec.Applies(x, weightOutIn) && !NativeBFloat16Gemm(weightOutIn.dtype, x.numel() / Math.Max(1, x.size(-1)));

    /// <summary>
    /// Fewest rows of a bf16 product that libtorch's GEMM takes from the mat-vec kernel on a CPU with bf16 dot products
    /// (AVX512_BF16: oneDNN's <c>vdpbf16ps</c> kernels; .NET has no intrinsic for it, so ours widens to float32 FMAs).
    /// Measured on a 2-core Zen 4, GPT-2 small's 48 block products with cold weights: 8 rows 71 (ours) against 73
    /// GFLOP/s, 16 rows 76 against 162, 32 rows 105 against 234, 64 rows 117 against 300. Through the engine (bf16,
    /// 16-token prompts, medians of four runs alternated in one process): 8 streams 32.4 ms a step in the kernel against
    /// 38.6 in the GEMM, 16 streams 52.1 against 50.1, 32 streams 79.6 against 70.4; a 32-token prefill 108 against 50 ms.
    /// </summary>
    public const int NativeBFloat16GemmRows = 16;

    /// <summary>Whether a dense product of <paramref name="rows"/> rows over <paramref name="dtype"/> weights runs in libtorch's native bf16 GEMM rather than the mat-vec kernel.</summary>
    public bool NativeBFloat16Gemm(ScalarType dtype, long rows) =>
        dtype == ScalarType.BFloat16 && SlicedFloat32Linear.NativeBFloat16 && rows >= NativeBFloat16GemmRows;

    /// <summary>
    /// Whether a quantized product of <paramref name="rows"/> rows runs in <see cref="QuantizedMatVec"/> (whose integer
    /// kernel rounds the inputs to int8 below <see cref="QuantizedMatVec.FloatTileRowsFor"/> rows): not under batch invariance, whose products must round the
    /// same at every batch size.
    /// </summary>
    public bool UsesQuantizedKernel(Device device, long rows) =>
        MatVecKernel && !BatchInvariant && QuantizedMatVec.Supported && device.type == DeviceType.CPU && rows <= CpuMatVec.MaxRows;

    /// <summary>Whether a whole step of <paramref name="tokens"/> rows runs in our kernels (<see cref="CpuPagedStep"/>), its products perhaps in libtorch's bf16 GEMM.</summary>
    public bool MatVecStep(ScalarType dtype, Device device, long tokens) => MatVecKernel && !BatchInvariant && CpuMatVec.Serves(dtype, device, tokens);

    /// <summary>Whether libtorch can be held to one thread for this step: no libtorch product in it needs the cores.</summary>
    public bool OneThreadStep(ScalarType dtype, Device device, long tokens) => MatVecStep(dtype, device, tokens) && !NativeBFloat16Gemm(dtype, tokens);
}
