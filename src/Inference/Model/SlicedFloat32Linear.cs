using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// x · Wᵀ through libtorch's GEMM for a weight kept in fewer bits than float32 (bf16, int8/int4 groups), expanded a
/// slice of output rows at a time into one reused buffer. Why: on a CPU without AVX512_BF16 libtorch's bf16 GEMM is far
/// slower than its float32 one (on a Zen 3 here a 512-token bf16 prefill took 5.0 s against float32's 0.96 s), and it
/// has no int8/int4 one at all, so on the CPU the slices are float32
/// and the product is too; elsewhere a slice moves to x's device and multiplies in x's dtype. One buffer serves every
/// slice: a fresh allocation each time page-faults its memory in again.
/// </summary>
internal static class SlicedFloat32Linear
{
    /// <summary>
    /// Weights expanded per libtorch product: 16 MB of float32, so every block product of GPT-2 small and medium is one
    /// product (the LM head goes in slices of 5,461 outputs of 768 inputs). Why not smaller: with 4 MB slices a product
    /// of 512 rows went in two to four narrower GEMMs plus a copy of each into the output, and measured (2-core Zen 3,
    /// ms, bf16 against float32's own GEMM) c_attn 12.5 / 10.3, attn.c_proj 5.5 / 3.3, c_fc 16.0 / 13.7, mlp.c_proj
    /// 16.5 / 13.3, against 10.7 / 3.7 / 15.7 / 13.9 for the whole weight widened into one buffer.
    /// </summary>
    private const int SliceWeights = 1 << 22;

    /// <summary>Writes rows [first, first + destination.shape[0]) of W, as float32, into <paramref name="destination"/> ([count, in], contiguous, CPU).</summary>
    public delegate void SliceFiller(int first, Tensor destination);

    /// <summary>
    /// Whether a bf16 weight's product with <paramref name="x"/> goes through float32 slices: on a CPU without bf16 dot
    /// products, when no gradient has to flow. With AVX512_BF16 libtorch's bf16 GEMM is the fast one (measured on a
    /// Zen 4 here: 855 GFLOP/s against float32's 183; a 512-token prefill 0.31 s against 0.68 s through the slices).
    /// </summary>
    public static bool Serves(Tensor x, Tensor weight) =>
        !NativeBFloat16 && weight.dtype == ScalarType.BFloat16 && x.device_type == DeviceType.CPU && weight.device_type == DeviceType.CPU
        && !(torch.is_grad_enabled() && (x.requires_grad || weight.requires_grad));

    /// <summary>AVX512_BF16 (CPUID leaf 7, sub-leaf 1, EAX bit 5) with the OS keeping AVX-512 state: what libtorch's bf16 kernels use.</summary>
    public static readonly bool NativeBFloat16 =
        Avx512F.IsSupported && X86Base.IsSupported && (X86Base.CpuId(7, 1).Eax & (1 << 5)) != 0;

    /// <summary>x [rows, in] → [rows, out], in float32 on the CPU (x's dtype elsewhere), each libtorch product at least <paramref name="minRows"/> rows.</summary>
    public static Tensor Apply(Tensor x, int outFeatures, int inFeatures, SliceFiller fill, int minRows)
    {
        var compute = x.device_type == DeviceType.CPU ? ScalarType.Float32 : x.dtype;
        using var input = x.to(compute);
        int sliceOutputs = Math.Clamp(SliceWeights / inFeatures, 1, outFeatures);
        using var buffer = torch.empty([sliceOutputs, inFeatures], ScalarType.Float32);
        Tensor Product(int first, Tensor slice)
        {
            fill(first, slice);
            using var weight = slice.to(compute, x.device);
            return BatchInvariantMatmul.Linear(input, weight, minRows);
        }
        if (sliceOutputs == outFeatures) return Product(0, buffer); // one product: it is the output
        var output = torch.empty([x.shape[0], outFeatures], compute, x.device);
        for (int first = 0; first < outFeatures; first += sliceOutputs)
        {
            int count = Math.Min(sliceOutputs, outFeatures - first);
            using var slice = buffer.narrow(0, 0, count);
            using var product = Product(first, slice);
            using var target = output.narrow(1, first, count);
            target.copy_(product);
        }
        return output;
    }

    /// <summary>(…, in) → (…, out) in x's dtype for a dense bf16 weight [out, in] (+ bias, added in float32 before the one rounding).</summary>
    public static Tensor Dense(Tensor x, Tensor weightOutIn, Tensor? bias, int minRows)
    {
        int outFeatures = (int)weightOutIn.shape[0], inFeatures = (int)weightOutIn.shape[1];
        var shape = x.shape.ToArray();
        shape[^1] = outFeatures;
        using var scope = torch.NewDisposeScope();
        var flat = Apply(x.reshape(-1, inFeatures), outFeatures, inFeatures,
            (first, destination) => destination.copy_(weightOutIn.narrow(0, first, destination.shape[0])), minRows);
        if (bias is not null) flat.add_(bias);
        return flat.view(shape).to(x.dtype).MoveToOuterDisposeScope();
    }
}
