using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// y = x · Wᵀ for a few rows of x (a decode step) on the CPU, with W a bfloat16 [out, in] row-major matrix.
/// Why our own kernel: decoding one token reads every weight once, so it is bound by memory bandwidth, and
/// libtorch's CPU bf16 matrix-vector path is no faster than its float32 one (measured: 20–21 ms per GPT-2 small
/// step for both), wasting the halved bytes. This kernel streams bf16 weights, converting with a shift/mask (a
/// bf16 is the top half of a float32) and accumulating in float32, split across the cores with prefetching.
/// In float32 libtorch's own path was as fast or faster, so it is left to libtorch.
/// While it runs, libtorch should be held to one thread (the engine's model runner does so for decode steps): its
/// OpenMP workers busy-wait after each op and would otherwise take the core the kernel's second half runs on.
/// </summary>
public static unsafe class CpuMatVec
{
    public const int MaxRows = 4;

    private static readonly bool Supported = Vector512.IsHardwareAccelerated && Sse.IsSupported
        && Environment.GetEnvironmentVariable("GPT2O_CPU_MATVEC") != "0";

    /// <summary>Whether a forward pass of <paramref name="rows"/> tokens in <paramref name="dtype"/> is a step the kernel serves.</summary>
    public static bool IsDecodeStep(ScalarType dtype, Device device, long rows) =>
        Supported && dtype == ScalarType.BFloat16 && device.type == DeviceType.CPU && rows <= MaxRows;

    /// <summary>Whether the kernel applies: CPU, a bfloat16 [out, in] contiguous weight, few rows, in a multiple of 32.</summary>
    public static bool Applies(Tensor x, Tensor weightOutIn) =>
        Supported
        && x.device_type == DeviceType.CPU
        && weightOutIn.is_contiguous()
        && weightOutIn.dim() == 2
        && weightOutIn.shape[1] % 32 == 0 // 16 floats per vector; 32 so bf16 pairs fill whole vectors
        && x.shape[^1] == weightOutIn.shape[1]
        && x.numel() / x.shape[^1] <= MaxRows
        && weightOutIn.dtype == ScalarType.BFloat16
        && x.dtype == weightOutIn.dtype
        && weightOutIn.numel() * weightOutIn.ElementSize <= int.MaxValue;

    /// <summary>(..., in) → (..., out) in x's dtype; <paramref name="bias"/> (out) is added when given.</summary>
    public static Tensor Apply(Tensor x, Tensor weightOutIn, Tensor? bias)
    {
        int inFeatures = (int)weightOutIn.shape[1], outFeatures = (int)weightOutIn.shape[0];
        int rows = (int)(x.numel() / inFeatures);
        var input = new float[rows * inFeatures];
        using (var xf = x.to(ScalarType.Float32).contiguous()) MemoryMarshal.Cast<byte, float>(xf.bytes).CopyTo(input);
        var output = torch.empty([rows, outFeatures], ScalarType.Float32);
        var outSpan = MemoryMarshal.Cast<byte, float>(output.bytes);
        fixed (float* y = outSpan)
        fixed (byte* w = weightOutIn.bytes)
            BFloat16((uint*)w, Deinterleave(input, rows, inFeatures), y, rows, inFeatures, outFeatures);
        var shape = x.shape.ToArray();
        shape[^1] = outFeatures;
        using (output)
        {
            var result = output.view(shape).to(x.dtype);
            return bias is null ? result : result.add_(bias);
        }
    }

    /// <summary>Each uint holds two bf16: element 2k in the low half, 2k+1 in the high half.</summary>
    private static void BFloat16(uint* w, float[] evenOdd, float* y, int rows, int inFeatures, int outFeatures)
    {
        nint wp = (nint)w, yp = (nint)y;
        ForEachChunk(outFeatures, (lo, hi) =>
        {
            fixed (float* x = evenOdd) BFloat16Range((uint*)wp, x, (float*)yp, rows, inFeatures, outFeatures, lo, hi);
        });
    }

    /// <summary>Outputs [lo, hi): two weight rows at a time; low halves × even inputs, high halves × odd inputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BFloat16Range(uint* w, float* x, float* y, int rows, int inFeatures, int outFeatures, int lo, int hi)
    {
        int pairs = inFeatures / 2;
        var highHalf = Vector512.Create(0xFFFF0000u);
        int o = lo;
        for (; o + 2 <= hi; o += 2)
        {
            uint* r0 = w + (long)o * pairs, r1 = r0 + pairs;
            for (int m = 0; m < rows; m++)
            {
                float* even = x + m * inFeatures, odd = even + pairs;
                var a0 = Vector512<float>.Zero; var b0 = a0; var a1 = a0; var b1 = a0;
                for (int j = 0; j < pairs; j += 16)
                {
                    Sse.Prefetch0(r0 + j + 4 * pairs);
                    Sse.Prefetch0(r1 + j + 4 * pairs);
                    var xe = Vector512.Load(even + j);
                    var xo = Vector512.Load(odd + j);
                    var p0 = Vector512.Load(r0 + j);
                    var p1 = Vector512.Load(r1 + j);
                    a0 = Vector512.FusedMultiplyAdd((p0 << 16).AsSingle(), xe, a0);
                    b0 = Vector512.FusedMultiplyAdd((p0 & highHalf).AsSingle(), xo, b0);
                    a1 = Vector512.FusedMultiplyAdd((p1 << 16).AsSingle(), xe, a1);
                    b1 = Vector512.FusedMultiplyAdd((p1 & highHalf).AsSingle(), xo, b1);
                }
                y[m * outFeatures + o] = Vector512.Sum(a0 + b0);
                y[m * outFeatures + o + 1] = Vector512.Sum(a1 + b1);
            }
        }
        for (; o < hi; o++)
            for (int m = 0; m < rows; m++)
            {
                float* even = x + m * inFeatures, odd = even + pairs;
                var a = Vector512<float>.Zero;
                for (int j = 0; j < pairs; j += 16)
                {
                    var p = Vector512.Load(w + (long)o * pairs + j);
                    a = Vector512.FusedMultiplyAdd((p << 16).AsSingle(), Vector512.Load(even + j), a);
                    a = Vector512.FusedMultiplyAdd((p & highHalf).AsSingle(), Vector512.Load(odd + j), a);
                }
                y[m * outFeatures + o] = Vector512.Sum(a);
            }
    }

    /// <summary>Per row: the even-indexed inputs, then the odd-indexed ones (matching the bf16 pair layout).</summary>
    private static float[] Deinterleave(float[] input, int rows, int inFeatures)
    {
        var result = new float[input.Length];
        int pairs = inFeatures / 2;
        for (int m = 0; m < rows; m++)
            for (int k = 0; k < pairs; k++)
            {
                result[m * inFeatures + k] = input[m * inFeatures + 2 * k];
                result[m * inFeatures + pairs + k] = input[m * inFeatures + 2 * k + 1];
            }
        return result;
    }

    private static void ForEachChunk(int outFeatures, Action<int, int> work)
    {
        int chunks = Environment.ProcessorCount;
        if (chunks == 1 || outFeatures < 256) { work(0, outFeatures); return; }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks },
            c => work((int)((long)c * outFeatures / chunks), (int)((long)(c + 1) * outFeatures / chunks)));
    }
}
