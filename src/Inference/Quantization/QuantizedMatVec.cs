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
                        total += w.Scale(o, b / blocksPerGroup) * a.Scales[r * a.Blocks + b] * sum;
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
                w.BlocksPerRow, w.GroupSize / Block, w.GroupsPerRow, w.RowBytes, w.TiledRows);
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
        int Rows, int Out, int Blocks, int BlocksPerGroup, int Groups, int RowBytes, int TiledRows);

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

        /// <summary>
        /// The stored nibbles (level + 8, unsigned) times x; the offset's 8 · Σx is taken off per row. The 16 bytes go
        /// to both halves in one load; the upper half shifted right by 4 (per 32-bit lane: a byte's high nibble lands in
        /// its own low bits) and both masked give inputs 0–15 then 16–31.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels)
        {
            var both = Avx2.BroadcastVector128ToVector256(weights);
            var nibbles = Avx2.ShiftRightLogicalVariable(both.AsUInt32(), Vector256.Create(0u, 0, 0, 0, 4, 4, 4, 4)).AsByte() & Vector256.Create((byte)0x0F);
            var pairs = Avx2.MultiplyAddAdjacent(nibbles, Avx.LoadVector256(levels));
            return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
        }
    }

    /// <summary>
    /// Outputs [lo, hi) for every input row: a tile of four weight rows at a time against each input row in turn (the
    /// tile stays in L1 while the input rows pass over it), each input block loaded once for the four. The tile's
    /// blocks and scales are interleaved (<see cref="QuantizedWeight"/>), so the pass reads one sequential stream.
    /// Shares start and end at multiples of four, the last at the end (<see cref="KernelThreads.RunShares"/>), so o
    /// walks whole tiles, then the rows stored one by one past the last.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Outputs<TBlocks>(Call call, int lo, int hi) where TBlocks : struct, IBlocks
    {
        const int Tile = QuantizedWeight.TileRows;
        byte* weights = (byte*)call.Weights;
        float* weightScales = (float*)call.WeightScales, inputScales = (float*)call.InputScales, inputSums = (float*)call.InputSums, y = (float*)call.Outputs;
        sbyte* levels = (sbyte*)call.Levels;
        int blocks = call.Blocks, perGroup = call.BlocksPerGroup, step = TBlocks.BlockBytes, groups = call.Groups;
        long rowBytes = call.RowBytes;
        int o = lo;
        for (; o + Tile <= hi && o < call.TiledRows; o += Tile)
        {
            byte* tile = weights + o * rowBytes;
            float* tileScales = weightScales + (long)o * groups;
            for (int r = 0; r < call.Rows; r++)
            {
                sbyte* xb = levels + (long)r * blocks * Block;
                float* xScales = inputScales + (long)r * blocks, xSums = inputSums + (long)r * blocks;
                var sums = Vector256<float>.Zero; // rows 0–3 in each 128-bit half
                var offsets = Vector128<float>.Zero; // int4's offset terms, rows 0–3
                byte* wb = tile;
                float* d = tileScales;
                for (int first = 0; first < blocks; first += perGroup, d += Tile)
                {
                    var groupScales = Sse.LoadVector128(d);
                    var scales = Vector256.Create(groupScales, groupScales);
                    int end = Math.Min(blocks, first + perGroup);
                    float groupSum = 0;
                    for (int b = first; b < end; b++, wb += Tile * step, xb += Block)
                    {
                        // Half a KB ahead in the stream while the first input row passes (measured best of 256 B–2 KB).
                        if (r == 0) { Sse.Prefetch0(wb + 512); if (step * Tile > 64) Sse.Prefetch0(wb + 576); }
                        if (TBlocks.Offset) groupSum += xSums[b];
                        // The four rows' partial sums added across first ([r0 r1 r2 r3] in each half), then one
                        // conversion and one FMA for the four: measured 1.3× faster than four of each for int4 in L1.
                        var rows = Avx2.HorizontalAdd(Avx2.HorizontalAdd(TBlocks.Dot(wb, xb), TBlocks.Dot(wb + step, xb)),
                                                      Avx2.HorizontalAdd(TBlocks.Dot(wb + 2 * step, xb), TBlocks.Dot(wb + 3 * step, xb)));
                        sums = Fma.MultiplyAdd(Avx.ConvertToVector256Single(rows), scales * Vector256.Create(xScales[b]), sums);
                    }
                    if (TBlocks.Offset) offsets = Fma.MultiplyAdd(groupScales, Vector128.Create(groupSum), offsets);
                }
                (sums.GetLower() + sums.GetUpper() - offsets * 8f).Store(y + (long)r * call.Out + o);
            }
        }
        System.Diagnostics.Debug.Assert(o >= call.TiledRows || o == hi, "a share ended inside a tile");
        for (; o < hi; o++) // the rows past the last whole tile, stored row by row: the same sums, one weight row at a time
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
                    float scale = scales[g];
                    var s = Vector256.Create(scale);
                    int end = Math.Min(blocks, first + perGroup);
                    float groupSum = 0;
                    for (int b = first; b < end; b++, wb += step, xb += Block)
                    {
                        if (TBlocks.Offset) groupSum += xSums[b];
                        a = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TBlocks.Dot(wb, xb)), s * Vector256.Create(xScales[b]), a);
                    }
                    if (TBlocks.Offset) f += scale * groupSum;
                }
                y[(long)r * call.Out + o] = Vector256.Sum(a) - 8 * f;
            }
        }
    }

    private static void Check(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        if (rows < 1 || x.Length != (long)rows * w.InFeatures) throw new ArgumentException($"x holds {x.Length} values, not {rows} rows of {w.InFeatures}");
    }
}
