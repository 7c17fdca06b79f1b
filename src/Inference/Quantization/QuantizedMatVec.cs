using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Gpt2Orleans.Inference.Model;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// y = x · Wᵀ for a few rows of x against a <see cref="QuantizedWeight"/> [out, in]. The rows are quantized to int8
/// per block of 32 (<see cref="QuantizedActivations"/>); each block's integer dot product is exact, then scaled by
/// the weight group's and the input block's scales and summed in float32 (ggml's q8_0 · q4_0 / q8_0 scheme).
/// Why our own kernel: a decode step reads every weight once, so fewer bytes per weight is speed, and libtorch has no
/// CPU kernel over int8/int4 groups. <see cref="Reference"/> is the scalar definition the tests hold the AVX2 path to
/// (<c>vpmaddubsw</c> + <c>vpmaddwd</c>: 32 products in two instructions). Output rows are split across the cores.
/// </summary>
public static unsafe class QuantizedMatVec
{
    private const int Block = QuantizedWeight.BlockSize;

    public static bool Supported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>x: [rows, in] row-major; returns [rows, out]: the scalar definition.</summary>
    public static float[] Reference(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        Check(w, x, rows);
        var y = new float[rows * w.OutFeatures];
        fixed (float* xp = x)
        {
            using var a = QuantizedActivations.Quantize(xp, rows, w.InFeatures);
            int blocksPerGroup = w.GroupSize / Block;
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < w.OutFeatures; o++)
                {
                    float total = 0;
                    for (int b = 0; b < w.BlocksPerRow; b++)
                    {
                        int sum = 0;
                        for (int j = 0; j < Block && b * Block + j < w.InFeatures; j++)
                            sum += w.Level(o, b * Block + j) * a.Levels[(r * a.Blocks + b) * Block + j];
                        total += w.Scales[o * w.GroupsPerRow + b / blocksPerGroup] * a.Scales[r * a.Blocks + b] * sum;
                    }
                    y[r * w.OutFeatures + o] = total;
                }
        }
        return y;
    }

    /// <summary>The vector kernel where the CPU has AVX2 and FMA (the reference otherwise).</summary>
    public static float[] Apply(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        Check(w, x, rows);
        if (!Supported) return Reference(w, x, rows);
        var y = new float[rows * w.OutFeatures];
        fixed (float* xp = x, yp = y) Multiply(w, xp, rows, yp);
        return y;
    }

    /// <summary>
    /// From this many rows the weights are dequantized a tile at a time and multiplied in float32 (CpuMatVec's
    /// register-blocked kernel), each tile serving every row: the integer kernel redoes a block's unpacking and
    /// conversion for every row, and measured slower than float32 weights from 8 rows on (8 streams: 137 tok/s
    /// with int8 against 188 with float32 weights). Below it, the integer kernel reads the fewest bytes.
    /// </summary>
    internal const int FloatTileRows = 4;

    /// <summary>Output rows dequantized per tile: 16 × 3,072 floats (192 KB) stay in L2 while every input row passes.</summary>
    private const int TileOutputs = 16;

    /// <summary>y [rows, out] = x [rows, in] · Wᵀ, for callers that keep activations in their own memory (the fused decode step).</summary>
    internal static void Multiply(QuantizedWeight w, float* x, int rows, float* y)
    {
        if (rows >= FloatTileRows && w.InFeatures % 16 == 0 && CpuMatVec.Supported) { MultiplyDequantized(w, x, rows, y); return; }
        using var a = QuantizedActivations.Quantize(x, rows, w.InFeatures);
        fixed (byte* data = w.Data)
        fixed (float* scales = w.Scales, xScales = a.Scales, xSums = a.ScaledSums)
        fixed (sbyte* levels = a.Levels)
        {
            var call = new Call((nint)data, (nint)scales, (nint)levels, (nint)xScales, (nint)xSums, (nint)y, rows, w.OutFeatures,
                w.BlocksPerRow, w.GroupSize / Block, w.GroupsPerRow, w.RowBytes);
            if (w.Type == QuantizationType.Int8) KernelThreads.RunShares(w.OutFeatures, (lo, hi) => Outputs<Int8Blocks>(call, lo, hi));
            else KernelThreads.RunShares(w.OutFeatures, (lo, hi) => Outputs<Int4Blocks>(call, lo, hi));
        }
    }

    /// <summary>Each core dequantizes its share of the outputs a tile at a time and multiplies the tile against all the rows.</summary>
    private static void MultiplyDequantized(QuantizedWeight w, float* x, int rows, float* y)
    {
        var (input, output) = ((nint)x, (nint)y);
        KernelThreads.RunShares(w.OutFeatures, (lo, hi) =>
        {
            var tile = System.Buffers.ArrayPool<float>.Shared.Rent(TileOutputs * w.InFeatures);
            try
            {
                fixed (float* t = tile)
                    for (int first = lo; first < hi; first += TileOutputs)
                    {
                        int count = Math.Min(TileOutputs, hi - first);
                        for (int o = 0; o < count; o++) w.DequantizeRow(first + o, new Span<float>(t + (long)o * w.InFeatures, w.InFeatures));
                        CpuMatVec.MultiplyTile(t, count, w.InFeatures, (float*)input, rows, (float*)output + first, w.OutFeatures);
                    }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(tile); }
        });
    }

    private readonly record struct Call(nint Weights, nint WeightScales, nint Levels, nint InputScales, nint InputSums, nint Outputs,
        int Rows, int Out, int Blocks, int BlocksPerGroup, int Groups, int RowBytes);

    /// <summary>One block's 32 exact products of weight and input levels, as eight int32 partial sums.</summary>
    private interface IBlocks
    {
        static abstract int BlockBytes { get; }
        /// <summary>What int4's stored offset adds to a row's sum (subtracted once per row): 0 for int8.</summary>
        static abstract bool Offset { get; }
        static abstract Vector256<int> Dot(byte* weights, sbyte* levels);
    }

    private readonly struct Int8Blocks : IBlocks
    {
        public static int BlockBytes => Block;
        public static bool Offset => false;

        /// <summary>vpmaddubsw multiplies unsigned by signed bytes: |w| times x carrying w's sign (ggml's trick).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels)
        {
            var w = Avx.LoadVector256((sbyte*)weights);
            var pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(Avx.LoadVector256(levels), w));
            return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
        }
    }

    private readonly struct Int4Blocks : IBlocks
    {
        public static int BlockBytes => Block / 2;
        public static bool Offset => true;

        /// <summary>The stored nibbles (level + 8, unsigned) times x; the offset's 8 · Σx is taken off per row.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels)
        {
            var packed = Sse2.LoadVector128(weights);
            var mask = Vector128.Create((byte)0x0F);
            var nibbles = Vector256.Create(packed & mask, Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & mask);
            var pairs = Avx2.MultiplyAddAdjacent(nibbles, Avx.LoadVector256(levels));
            return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
        }
    }

    /// <summary>
    /// Outputs [lo, hi) for every input row: four weight rows at a time against each input row in turn (the four
    /// rows stay in L1 while the input rows pass over them), each input block loaded once for the four; four
    /// independent chains. Measured in L1 on one core: 1.2 ns a block and output, against 1.7 for one row at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Outputs<TBlocks>(Call call, int lo, int hi) where TBlocks : struct, IBlocks
    {
        byte* weights = (byte*)call.Weights;
        float* weightScales = (float*)call.WeightScales, inputScales = (float*)call.InputScales, inputSums = (float*)call.InputSums, y = (float*)call.Outputs;
        sbyte* levels = (sbyte*)call.Levels;
        int blocks = call.Blocks, perGroup = call.BlocksPerGroup, step = TBlocks.BlockBytes, groups = call.Groups;
        long rowBytes = call.RowBytes;
        int o = lo;
        for (; o + 4 <= hi; o += 4)
        {
            byte* row0 = weights + o * rowBytes;
            float* scales0 = weightScales + (long)o * groups;
            for (int r = 0; r < call.Rows; r++)
            {
                sbyte* xb = levels + (long)r * blocks * Block;
                float* xScales = inputScales + (long)r * blocks, xSums = inputSums + (long)r * blocks;
                Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                float f0 = 0, f1 = 0, f2 = 0, f3 = 0; // int4's offset terms
                byte* wb = row0;
                for (int g = 0, first = 0; first < blocks; g++, first += perGroup)
                {
                    float d0 = scales0[g], d1 = scales0[groups + g], d2 = scales0[2 * groups + g], d3 = scales0[3 * groups + g];
                    var s0 = Vector256.Create(d0); var s1 = Vector256.Create(d1); var s2 = Vector256.Create(d2); var s3 = Vector256.Create(d3);
                    int end = Math.Min(blocks, first + perGroup);
                    float groupSum = 0;
                    for (int b = first; b < end; b++, wb += step, xb += Block)
                    {
                        // The next four rows' line at this position, while the first input row passes: four short row
                        // streams end before the hardware prefetcher ramps up (as in CpuMatVec).
                        if (r == 0 && ((b * step) & 63) == 0) Prefetch(wb + 4 * rowBytes, rowBytes);
                        var dx = Vector256.Create(xScales[b]);
                        if (TBlocks.Offset) groupSum += xSums[b];
                        a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TBlocks.Dot(wb, xb)), s0 * dx, a0);
                        a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TBlocks.Dot(wb + rowBytes, xb)), s1 * dx, a1);
                        a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TBlocks.Dot(wb + 2 * rowBytes, xb)), s2 * dx, a2);
                        a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TBlocks.Dot(wb + 3 * rowBytes, xb)), s3 * dx, a3);
                    }
                    if (TBlocks.Offset) { f0 += d0 * groupSum; f1 += d1 * groupSum; f2 += d2 * groupSum; f3 += d3 * groupSum; }
                }
                float* yr = y + (long)r * call.Out + o;
                yr[0] = Vector256.Sum(a0) - 8 * f0; yr[1] = Vector256.Sum(a1) - 8 * f1;
                yr[2] = Vector256.Sum(a2) - 8 * f2; yr[3] = Vector256.Sum(a3) - 8 * f3;
            }
        }
        for (; o < hi; o++) // a share's last outputs past a multiple of four: the same sums, one weight row at a time
        {
            float* scales = weightScales + (long)o * groups;
            for (int r = 0; r < call.Rows; r++)
            {
                byte* wb = weights + o * rowBytes;
                sbyte* xb = levels + (long)r * blocks * Block;
                float* xScales = inputScales + (long)r * blocks, xSums = inputSums + (long)r * blocks;
                var a = Vector256<float>.Zero;
                float f = 0;
                for (int g = 0, first = 0; first < blocks; g++, first += perGroup)
                {
                    var s = Vector256.Create(scales[g]);
                    int end = Math.Min(blocks, first + perGroup);
                    float groupSum = 0;
                    for (int b = first; b < end; b++, wb += step, xb += Block)
                    {
                        if (TBlocks.Offset) groupSum += xSums[b];
                        a = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TBlocks.Dot(wb, xb)), s * Vector256.Create(xScales[b]), a);
                    }
                    if (TBlocks.Offset) f += scales[g] * groupSum;
                }
                y[(long)r * call.Out + o] = Vector256.Sum(a) - 8 * f;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(byte* p, long rowBytes)
    {
        Sse.Prefetch0(p); Sse.Prefetch0(p + rowBytes); Sse.Prefetch0(p + 2 * rowBytes); Sse.Prefetch0(p + 3 * rowBytes);
    }

    private static void Check(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        if (rows < 1 || x.Length != (long)rows * w.InFeatures) throw new ArgumentException($"x holds {x.Length} values, not {rows} rows of {w.InFeatures}");
    }
}
