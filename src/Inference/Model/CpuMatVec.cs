using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// y = x · Wᵀ for a few rows of x (a decode step) on the CPU, with W a float32 or bfloat16 [out, in] row-major matrix.
/// Why our own kernel: decoding reads every weight once per step, so it is bound by memory bandwidth, and libtorch's
/// CPU path does not reach it: measured on this 2-core machine with GPT-2 small's matrices, one row of fp32 ran at
/// 15–16 GB/s (one core; its GEMV is not split) and 2–16 rows at 4–7 GB/s, against 25–30 GB/s for this kernel; its bf16
/// path is no faster than fp32, wasting the halved bytes. Each pass streams four weight rows against three input rows
/// (or two, or one; AVX2 + FMA, 256-bit: Zen 3 and 4 and recent Intel), accumulating in float32; bf16 weights are widened with a
/// shift/mask (a bf16 is the top half of a float32). Output rows are split across the cores (<see cref="KernelThreads"/>).
/// Every output is one fixed sum over its own input row and weight row, so a row's result does not depend on how
/// many rows share the call (up to <see cref="MaxRows"/>). While it runs libtorch should be held to one thread (the
/// engine's model runner does so for such steps): its OpenMP workers busy-wait after each op and would take the core
/// the kernel's second half runs on.
/// </summary>
internal static unsafe class CpuMatVec
{
    /// <summary>
    /// Most rows per call. Measured on 2 cores (GPT-2 small, fp32), against libtorch's GEMM on both cores: a 32- and a
    /// 64-stream decode step 195–210 → 112 and 321–330 → 226 ms (the kernel served up to 16 rows before); a
    /// prefill of 16 / 32 / 64 rows 88–111 / 141–155 / 146–188 → 49–51 / 91–150 / 157–165 ms, and of 128 rows slower
    /// (240–311 → 313–353 ms): beyond 64 rows libtorch's blocked GEMM reuses the weights better.
    /// </summary>
    public const int MaxRows = 64;
    // Software prefetch of the block of four weight rows two blocks ahead, walked in address order (one sequential
    // stream, its lines spread evenly over the block's passes): the hardware prefetcher serves four interleaved row
    // streams poorly. Measured (GPT-2 small's 49 products, one input row, bf16, 2 cores): prefetching each of the
    // four rows 16 rows ahead 18.1–20.2 GB/s, this 28.9–29.6 (a plain read of the same bytes 29–30); 4 blocks ahead 27.9.
    private const int PrefetchBlocks = 2;
    // The lead and the block being read that L1 holds (three quarters of Zen 4's 32 KB); beyond it the prefetch goes to L2 (BlockPrefetch).
    private const int L1PrefetchBytes = 24 * 1024;
    private const int Unit = 16; // inputs per step of the inner loop: two float32 vectors, or one vector of bf16 pairs

    public static bool Supported => Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Whether a step of <paramref name="rows"/> tokens in <paramref name="dtype"/> on <paramref name="device"/> is one the kernel serves.</summary>
    public static bool Serves(ScalarType dtype, Device device, long rows) =>
        Supported && device.type == DeviceType.CPU && rows <= MaxRows && dtype is ScalarType.Float32 or ScalarType.BFloat16;

    /// <summary>Whether the kernel applies: CPU, a contiguous [out, in] weight in x's dtype, few rows, in a multiple of 16.</summary>
    public static bool Applies(Tensor x, Tensor weightOutIn) =>
        Serves(weightOutIn.dtype, x.device, x.numel() / Math.Max(1, x.size(-1)))
        && weightOutIn.device_type == DeviceType.CPU
        && weightOutIn.is_contiguous()
        && weightOutIn.dim() == 2
        && weightOutIn.size(1) % Unit == 0
        && x.size(-1) == weightOutIn.size(1)
        && x.dtype == weightOutIn.dtype
        && weightOutIn.size(0) * weightOutIn.size(1) <= int.MaxValue;

    /// <summary>(..., in) → (..., out) in x's dtype; <paramref name="bias"/> (out) is added when given.</summary>
    public static Tensor Apply(Tensor x, Tensor weightOutIn, Tensor? bias)
    {
        int inFeatures = (int)weightOutIn.size(1), outFeatures = (int)weightOutIn.size(0);
        int rows = (int)(x.numel() / inFeatures);
        using var contiguous = x.contiguous();
        var input = Inputs(contiguous, rows * inFeatures, weightOutIn.dtype);
        var output = torch.empty([rows, outFeatures], ScalarType.Float32);
        try
        {
            fixed (float* xp = input)
            fixed (float* yp = MemoryMarshal.Cast<byte, float>(output.bytes))
                Multiply(xp, rows, TensorMemory.Of(weightOutIn), yp);
        }
        finally { ArrayPool<float>.Shared.Return(input); }
        var shape = x.shape.ToArray();
        shape[^1] = outFeatures;
        Tensor result;
        using (output)
        using (var view = output.view(shape))
            result = x.dtype == ScalarType.Float32 ? view.alias() : view.to(x.dtype); // the alias keeps the storage
        return bias is null ? result : result.add_(bias);
    }

    /// <summary>
    /// y (rows, out) = x · Wᵀ in float32, x being <paramref name="rows"/> rows already laid out by
    /// <see cref="Arrange"/> for W's dtype. For callers that keep their activations in their own memory (the fused decode step).
    /// </summary>
    internal static void Multiply(float* arranged, int rows, TensorMemory weightOutIn, float* output)
    {
        var call = new Call(weightOutIn.Address, (nint)arranged, (nint)output, rows, weightOutIn.Columns, weightOutIn.Rows);
        if (weightOutIn.DType == ScalarType.Float32) KernelThreads.RunShares(call.Out, (lo, hi) => Rows<Float32Weights>(call, lo, hi));
        else KernelThreads.RunShares(call.Out, (lo, hi) => Rows<BFloat16Weights>(call, lo, hi));
    }

    /// <summary>
    /// y [rows, <paramref name="outStride"/>] columns 0 … count−1 = x · Wᵀ for a float32 [count, in] tile of weights
    /// in the caller's memory (a quantized weight's slice, dequantized), on this thread; x as <see cref="Arrange"/> lays
    /// out float32 inputs (unchanged), in a multiple of 16.
    /// </summary>
    internal static void MultiplyTile(float* weights, int count, int inFeatures, float* x, int rows, float* y, int outStride) =>
        Rows<Float32Weights>(new Call((nint)weights, (nint)x, (nint)y, rows, inFeatures, outStride), 0, count);

    private readonly record struct Call(nint Weights, nint Inputs, nint Outputs, int Rows, int In, int Out);

    /// <summary>x's <paramref name="count"/> values as float32 (a pooled array) laid out by <see cref="Arrange"/>; read straight from x's memory, no libtorch op per call.</summary>
    private static float[] Inputs(Tensor x, int count, ScalarType weights)
    {
        var input = ArrayPool<float>.Shared.Rent(count);
        ReadFloat32(x, input);
        fixed (float* values = input) Arrange(values, count, weights, values);
        return input;
    }

    /// <summary>A contiguous float32 or bf16 tensor's values as float32 (bf16 widened: it is a float32's top half), read from its memory.</summary>
    internal static void ReadFloat32(Tensor t, Span<float> destination) => ReadFloat32(TensorMemory.Of(t), destination);

    /// <summary>The same from memory found before.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    internal static void ReadFloat32(TensorMemory t, Span<float> destination)
    {
        if (t.DType == ScalarType.Float32) { new ReadOnlySpan<float>((void*)t.Address, t.Count).CopyTo(destination); return; }
        var bits = new ReadOnlySpan<ushort>((void*)t.Address, t.Count);
        if (destination.Length < bits.Length) throw new ArgumentException($"{bits.Length} values do not fit in {destination.Length}", nameof(destination));
        int i = 0;
        // Sixteen at a time: a bf16 step reads its norms' and biases' 120 K values this way (measured from cache: 36–42 → 10–15 µs a step).
        for (; Vector256.IsHardwareAccelerated && i + 16 <= bits.Length; i += 16)
        {
            var (low, high) = Vector256.Widen(Vector256.Create(bits.Slice(i, 16)));
            (low << 16).AsSingle().CopyTo(destination.Slice(i));
            (high << 16).AsSingle().CopyTo(destination.Slice(i + 8));
        }
        for (; i < bits.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(bits[i] << 16);
    }

    /// <summary>
    /// Lays out <paramref name="count"/> float32 inputs (whole rows, a multiple of 16) as the weights' loader reads
    /// them: as they are for float32 weights; for bf16 each 16-input unit's 8 even inputs, then its 8 odd ones (a vector
    /// of bf16 pairs widens into evens and odds).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Arrange(float* values, int count, ScalarType weights, float* arranged)
    {
        if (weights == ScalarType.Float32)
        {
            if (values != arranged) new ReadOnlySpan<float>(values, count).CopyTo(new Span<float>(arranged, count));
            return;
        }
        var evens = Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7); // in each 8-input half: its evens, then its odds
        for (int start = 0; start < count; start += Unit)
        {
            var low = Avx2.PermuteVar8x32(Vector256.Load(values + start), evens);
            var high = Avx2.PermuteVar8x32(Vector256.Load(values + start + 8), evens);
            Avx2.Permute2x128(low, high, 0x20).Store(arranged + start);     // evens of both halves
            Avx2.Permute2x128(low, high, 0x31).Store(arranged + start + 8); // odds of both halves
        }
    }

    /// <summary>How one 16-input unit of a weight row is read into two float32 vectors (no tuple: the JIT keeps these in registers).</summary>
    private interface IWeights
    {
        static abstract int UnitBytes { get; }
        static abstract Vector256<float> First(byte* unit);
        static abstract Vector256<float> Second(byte* unit);
    }

    private readonly struct Float32Weights : IWeights
    {
        public static int UnitBytes => Unit * sizeof(float);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> First(byte* unit) => Vector256.Load((float*)unit);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Second(byte* unit) => Vector256.Load((float*)unit + 8);
    }

    /// <summary>Each uint holds two bf16: element 2k in the low half (→ evens), 2k+1 in the high half (→ odds).</summary>
    private readonly struct BFloat16Weights : IWeights
    {
        public static int UnitBytes => Unit * sizeof(ushort);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> First(byte* unit) => (Vector256.Load((uint*)unit) << 16).AsSingle();
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Second(byte* unit) => (Vector256.Load((uint*)unit) & Vector256.Create(0xFFFF0000u)).AsSingle();
    }

    /// <summary>
    /// Fewest input rows for which a bf16 block of four weight rows is widened once into float32 (12 KB for 768
    /// inputs: L1) and every pass reads that, instead of each pass widening it again: a shift or a mask per weight
    /// vector beside its three FMAs, on a CPU whose FMA and shift ports overlap (Zen 3). The sums are the same bits.
    /// Measured on a 2-core Zen 3 (GPT-2 small, 16-token prompts, 64 new; one engine per process, the two builds
    /// alternated three times; forward ms a step, every pass → once): 32 streams 97.8 / 108.9 / 93.2 → 83.2 / 89.7 /
    /// 90.8 (output 279–345 → 357–380 tok/s), 16 streams 51.6 / 50.1 / 53.8 → 50.3 / 50.3 / 49.1. Fewer rows share a
    /// block too little to pay for the stores: the 48 block products and the LM head alone (medians of 10) at 8 rows
    /// 20.7 → 24.0 ms, at 12 rows 30.4 → 30.4.
    /// </summary>
    private const int WidenOnceRows = 12;

    /// <summary>Outputs [lo, hi) for every input row: four weight rows at a time against three input rows, then two, then one; then one weight row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows<TWeights>(Call call, int lo, int hi) where TWeights : struct, IWeights
    {
        byte* w = (byte*)call.Weights;
        float* x = (float*)call.Inputs, y = (float*)call.Outputs;
        int n = call.In, units = n / Unit, step = TWeights.UnitBytes;
        long rowBytes = (long)units * step;
        int o = lo;
        // One float32 input row (a single stream's decode) walks the weight rows one after another: the share is then one
        // sequential stream for the prefetcher, where four rows a pass read four. Measured (GPT-2 small's 49 products,
        // two cores, alternated in one process): 15.3–15.8 → 13.1–14.4 ms median. bf16 rows stay four a pass: one row's
        // chain of FMAs covers only 32 bytes of bf16 per two FMAs and measured slower (8.4–8.6 → 8.5–9.9 ms).
        // The row-at-a-time loop below adds in the same order, so results are the same either way.
        bool rowByRow = call.Rows == 1 && TWeights.UnitBytes == Unit * sizeof(float);
        bool widen = typeof(TWeights) == typeof(BFloat16Weights) && call.Rows >= WidenOnceRows;
        var widened = widen ? ArrayPool<float>.Shared.Rent(4 * n) : null;
        try
        {
            fixed (float* block = widened)
                for (; o + 4 <= hi && !rowByRow; o += 4)
                {
                    byte* r0 = w + o * rowBytes;
                    var prefetch = new BlockPrefetch(r0 + PrefetchBlocks * 4 * rowBytes, w + (long)hi * rowBytes, 4 * step / 64,
                        toL2: call.Rows > 2 || (PrefetchBlocks + 1) * 4 * rowBytes > L1PrefetchBytes);
                    if (!widen) FourRows<TWeights>(call, r0, rowBytes, o, ref prefetch, prefetching: true);
                    else
                    {
                        Widen(r0, rowBytes, units, block, ref prefetch);
                        FourRows<Float32Weights>(call, (byte*)block, (long)n * sizeof(float), o, ref prefetch, prefetching: false);
                    }
                }
        }
        finally { if (widened is not null) ArrayPool<float>.Shared.Return(widened); }
        for (; o < hi; o++) // rows past the last four, or every row (above): one weight row at a time
            for (int m = 0; m < call.Rows; m++)
            {
                float* xa = x + (long)m * n;
                byte* r = w + o * rowBytes;
                Vector256<float> a = default;
                for (int u = 0; u < units; u++)
                    a = Vector256.FusedMultiplyAdd(TWeights.Second(r + u * step), Vector256.Load(xa + u * Unit + 8),
                        Vector256.FusedMultiplyAdd(TWeights.First(r + u * step), Vector256.Load(xa + u * Unit), a));
                y[(long)m * call.Out + o] = Vector256.Sum(a);
            }
    }

    /// <summary>
    /// Four bf16 weight rows as float32 into <paramref name="block"/> (four rows of <c>units</c> × 16), each unit as the
    /// float32 loader reads it: the evens, then the odds, as the inputs are arranged, so the sums are the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Widen(byte* r0, long rowBytes, int units, float* block, ref BlockPrefetch prefetch)
    {
        int n = units * Unit;
        for (int u = 0; u < units; u++)
        {
            prefetch.Next();
            int at = u * BFloat16Weights.UnitBytes;
            for (int r = 0; r < 4; r++)
            {
                byte* unit = r0 + r * rowBytes + at;
                float* target = block + r * n + u * Unit;
                BFloat16Weights.First(unit).Store(target);
                BFloat16Weights.Second(unit).Store(target + 8);
            }
        }
    }

    /// <summary>
    /// One block of four weight rows (from <paramref name="r0"/>, <paramref name="rowBytes"/> apart) against every input
    /// row: three input rows a pass, then two, then one. The first pass walks the prefetch when <paramref name="prefetching"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRows<TWeights>(Call call, byte* r0, long rowBytes, int o, ref BlockPrefetch prefetch, bool prefetching) where TWeights : struct, IWeights
    {
        float* x = (float*)call.Inputs, y = (float*)call.Outputs;
        int n = call.In, units = n / Unit, step = TWeights.UnitBytes;
        byte* r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
        int m = 0;
        // Three input rows at a time: twelve sums take one FMA each per half unit, with each half's three input
        // vectors and one weight vector: sixteen registers. Measured (32 rows, GPT-2 small's products, fp32):
        // 94 → 115 GFLOP/s against the two-row pass below, which keeps the rest, with the same sums in the same order.
        for (; m + 3 <= call.Rows; m += 3)
        {
            float* xa = x + (long)m * n, xb = xa + n, xc = xb + n;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default,
                c0 = default, c1 = default, c2 = default, c3 = default;
            for (int u = 0; u < units; u++)
            {
                int at = u * step, xu = u * Unit;
                if (m == 0 && prefetching) prefetch.Next();
                var va = Vector256.Load(xa + xu); var vb = Vector256.Load(xb + xu); var vc = Vector256.Load(xc + xu);
                var wv = TWeights.First(r0 + at);
                a0 = Vector256.FusedMultiplyAdd(wv, va, a0); b0 = Vector256.FusedMultiplyAdd(wv, vb, b0); c0 = Vector256.FusedMultiplyAdd(wv, vc, c0);
                wv = TWeights.First(r1 + at);
                a1 = Vector256.FusedMultiplyAdd(wv, va, a1); b1 = Vector256.FusedMultiplyAdd(wv, vb, b1); c1 = Vector256.FusedMultiplyAdd(wv, vc, c1);
                wv = TWeights.First(r2 + at);
                a2 = Vector256.FusedMultiplyAdd(wv, va, a2); b2 = Vector256.FusedMultiplyAdd(wv, vb, b2); c2 = Vector256.FusedMultiplyAdd(wv, vc, c2);
                wv = TWeights.First(r3 + at);
                a3 = Vector256.FusedMultiplyAdd(wv, va, a3); b3 = Vector256.FusedMultiplyAdd(wv, vb, b3); c3 = Vector256.FusedMultiplyAdd(wv, vc, c3);
                va = Vector256.Load(xa + xu + 8); vb = Vector256.Load(xb + xu + 8); vc = Vector256.Load(xc + xu + 8);
                wv = TWeights.Second(r0 + at);
                a0 = Vector256.FusedMultiplyAdd(wv, va, a0); b0 = Vector256.FusedMultiplyAdd(wv, vb, b0); c0 = Vector256.FusedMultiplyAdd(wv, vc, c0);
                wv = TWeights.Second(r1 + at);
                a1 = Vector256.FusedMultiplyAdd(wv, va, a1); b1 = Vector256.FusedMultiplyAdd(wv, vb, b1); c1 = Vector256.FusedMultiplyAdd(wv, vc, c1);
                wv = TWeights.Second(r2 + at);
                a2 = Vector256.FusedMultiplyAdd(wv, va, a2); b2 = Vector256.FusedMultiplyAdd(wv, vb, b2); c2 = Vector256.FusedMultiplyAdd(wv, vc, c2);
                wv = TWeights.Second(r3 + at);
                a3 = Vector256.FusedMultiplyAdd(wv, va, a3); b3 = Vector256.FusedMultiplyAdd(wv, vb, b3); c3 = Vector256.FusedMultiplyAdd(wv, vc, c3);
            }
            float* ya = y + (long)m * call.Out + o, yb = ya + call.Out, yc = yb + call.Out;
            ya[0] = Vector256.Sum(a0); ya[1] = Vector256.Sum(a1); ya[2] = Vector256.Sum(a2); ya[3] = Vector256.Sum(a3);
            yb[0] = Vector256.Sum(b0); yb[1] = Vector256.Sum(b1); yb[2] = Vector256.Sum(b2); yb[3] = Vector256.Sum(b3);
            yc[0] = Vector256.Sum(c0); yc[1] = Vector256.Sum(c1); yc[2] = Vector256.Sum(c2); yc[3] = Vector256.Sum(c3);
        }
        for (; m + 2 <= call.Rows; m += 2)
        {
            float* xa = x + (long)m * n, xb = xa + n;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
            for (int u = 0; u < units; u++)
            {
                int at = u * step;
                if (m == 0 && prefetching) prefetch.Next(); // m is 0 here only for two rows alone
                var xa0 = Vector256.Load(xa + u * Unit); var xa1 = Vector256.Load(xa + u * Unit + 8);
                var xb0 = Vector256.Load(xb + u * Unit); var xb1 = Vector256.Load(xb + u * Unit + 8);
                var w0 = TWeights.First(r0 + at); var w1 = TWeights.Second(r0 + at);
                a0 = Vector256.FusedMultiplyAdd(w1, xa1, Vector256.FusedMultiplyAdd(w0, xa0, a0));
                b0 = Vector256.FusedMultiplyAdd(w1, xb1, Vector256.FusedMultiplyAdd(w0, xb0, b0));
                w0 = TWeights.First(r1 + at); w1 = TWeights.Second(r1 + at);
                a1 = Vector256.FusedMultiplyAdd(w1, xa1, Vector256.FusedMultiplyAdd(w0, xa0, a1));
                b1 = Vector256.FusedMultiplyAdd(w1, xb1, Vector256.FusedMultiplyAdd(w0, xb0, b1));
                w0 = TWeights.First(r2 + at); w1 = TWeights.Second(r2 + at);
                a2 = Vector256.FusedMultiplyAdd(w1, xa1, Vector256.FusedMultiplyAdd(w0, xa0, a2));
                b2 = Vector256.FusedMultiplyAdd(w1, xb1, Vector256.FusedMultiplyAdd(w0, xb0, b2));
                w0 = TWeights.First(r3 + at); w1 = TWeights.Second(r3 + at);
                a3 = Vector256.FusedMultiplyAdd(w1, xa1, Vector256.FusedMultiplyAdd(w0, xa0, a3));
                b3 = Vector256.FusedMultiplyAdd(w1, xb1, Vector256.FusedMultiplyAdd(w0, xb0, b3));
            }
            float* ya = y + (long)m * call.Out + o, yb = ya + call.Out;
            ya[0] = Vector256.Sum(a0); ya[1] = Vector256.Sum(a1); ya[2] = Vector256.Sum(a2); ya[3] = Vector256.Sum(a3);
            yb[0] = Vector256.Sum(b0); yb[1] = Vector256.Sum(b1); yb[2] = Vector256.Sum(b2); yb[3] = Vector256.Sum(b3);
        }
        if (m < call.Rows) // the odd last row (or a row alone): the same sums, one input row
        {
            float* xa = x + (long)m * n;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int u = 0; u < units; u++)
            {
                int at = u * step;
                if (m == 0 && prefetching) prefetch.Next();
                var xa0 = Vector256.Load(xa + u * Unit); var xa1 = Vector256.Load(xa + u * Unit + 8);
                a0 = Vector256.FusedMultiplyAdd(TWeights.Second(r0 + at), xa1, Vector256.FusedMultiplyAdd(TWeights.First(r0 + at), xa0, a0));
                a1 = Vector256.FusedMultiplyAdd(TWeights.Second(r1 + at), xa1, Vector256.FusedMultiplyAdd(TWeights.First(r1 + at), xa0, a1));
                a2 = Vector256.FusedMultiplyAdd(TWeights.Second(r2 + at), xa1, Vector256.FusedMultiplyAdd(TWeights.First(r2 + at), xa0, a2));
                a3 = Vector256.FusedMultiplyAdd(TWeights.Second(r3 + at), xa1, Vector256.FusedMultiplyAdd(TWeights.First(r3 + at), xa0, a3));
            }
            float* ya = y + (long)m * call.Out + o;
            ya[0] = Vector256.Sum(a0); ya[1] = Vector256.Sum(a1); ya[2] = Vector256.Sum(a2); ya[3] = Vector256.Sum(a3);
        }
    }

    /// <summary>
    /// Walks a block of weight rows ahead in address order, <c>lines</c> cache lines per step of the inner loop (a block's
    /// bytes ÷ its steps: two for bf16, four for float32), stopping at the share's end; into L1, or only as far as L2
    /// when <c>toL2</c>. Why L2 for wide rows (the lead and the block beyond <see cref="L1PrefetchBytes"/>): L1 dropped
    /// lines before they were read; GPT-2 small's 48 block products, bf16, one row, 2 cores, medians of 40 alternated
    /// runs: 26.6 → 30.0 and 30.2 → 33.6 GB/s (mlp.c_proj's 3,072-input rows alone 26.7 → 48.9). Why L2 for a block
    /// that several passes read (more than two input rows): measured on the LM head
    /// (2 cores, GB/s of weights, medians of 28 alternated calls), L1 against L2: float32 3 rows 19.9 → 29.5, 4 rows 18.6
    /// → 27.8, 8 rows 12.8 → 21.5, 16 rows 12.5 → 16.9; bf16 4 rows 18.7 → 27.1, 8 rows 10.8 → 16.1; while a block read
    /// once (one pass of one or two rows) reads as fast or faster into L1 (bf16, one row: 32.2–33.3 against 26.9–29.8).
    /// </summary>
    private struct BlockPrefetch(byte* next, byte* end, int lines, bool toL2)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next()
        {
            for (int i = 0; i < lines && next < end; i++, next += 64)
                if (toL2) Sse.Prefetch1(next); else Sse.Prefetch0(next);
        }
    }
}
