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
/// CPU kernel over int8/int4 groups. <see cref="Reference"/> is the scalar definition the tests hold every
/// <see cref="IntegerKernel"/> to: AVX2 (<c>vpmaddubsw</c> + <c>vpmaddwd</c>: 32 products in two instructions),
/// AVX-VNNI (<c>vpdpbusd</c>: in one) and int4 in AVX-512, the widest the CPU has by default; nf4's 4-bit indices
/// become int8 levels in a byte shuffle first (<see cref="NormalFloat4"/>). Output rows are split across the cores.
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
    public static float[] Apply(QuantizedWeight w, ReadOnlySpan<float> x, int rows) =>
        Supported ? Apply(w, x, rows, Fastest(w.Type)) : Reference(w, x, rows);

    /// <summary>The vector kernel with a chosen integer kernel (which must run here).</summary>
    internal static float[] Apply(QuantizedWeight w, ReadOnlySpan<float> x, int rows, IntegerKernel kernel)
    {
        Check(w, x, rows);
        var y = new float[rows * w.OutFeatures];
        fixed (float* xp = x, yp = y) Multiply(w, xp, rows, yp, kernel);
        return y;
    }

    /// <summary>
    /// From this many rows the weights are dequantized a tile at a time and multiplied in float32 (CpuMatVec's
    /// register-blocked kernel), each tile serving every row; below it the integer kernel, which reads the fewest bytes
    /// but redoes a block's unpacking and conversion for every row. Measured (GPT-2 small's 48 block products, 2 cores,
    /// medians of 8–14 alternated calls, ms, integer kernel against float tiles): int8 (AVX2) 4 rows 10.9 / 21.2, 8
    /// 25.3 / 25.6, 12 25.6 / 27.8, 16 33.7 / 34.1, 24 41.1 / 38.8; int4 AVX2 4 rows 11.1 / 21.5, 8 17.6 / 23.0, 16
    /// 41.7 / 36.9; int4 AVX-512 4 rows 8.5 / 17.9, 8 14.8 / 23.9, 16 25.4 / 34.5, 24 45.4 / 52.2, 32 53.0 / 49.7.
    /// </summary>
    internal static int FloatTileRowsFor(IntegerKernel kernel) => kernel == IntegerKernel.Avx512 ? 32 : 16;

    /// <summary>Output rows dequantized per tile: 16 × 3,072 floats (192 KB) stay in L2 while every input row passes.</summary>
    private const int TileOutputs = 16;

    /// <summary>y [rows, out] = x [rows, in] · Wᵀ, for callers that keep activations in their own memory (the fused decode step).</summary>
    internal static void Multiply(QuantizedWeight w, float* x, int rows, float* y) => Multiply(w, x, rows, y, Fastest(w.Type));

    /// <summary>The same with a chosen integer kernel (the tests hold each to the reference).</summary>
    internal static void Multiply(QuantizedWeight w, float* x, int rows, float* y, IntegerKernel kernel)
    {
        if (rows >= FloatTileRowsFor(kernel) && w.InFeatures % 16 == 0 && CpuMatVec.Supported) { MultiplyDequantized(w, x, rows, y); return; }
        if (!Supports(kernel, w.Type)) throw new PlatformNotSupportedException($"the {kernel} kernel for {w.Type} does not run on this CPU");
        using var a = QuantizedActivations.Quantize(x, rows, w.InFeatures);
        fixed (byte* data = w.Data)
        fixed (float* scales = w.Scales, xScales = a.Scales)
        fixed (int* xSums = a.LevelSums)
        fixed (sbyte* levels = a.Levels)
        {
            var call = new Call((nint)data, (nint)scales, (nint)levels, (nint)xScales, (nint)xSums, (nint)y, rows, w.OutFeatures,
                w.BlocksPerRow, w.GroupSize / Block, w.GroupsPerRow, w.RowBytes, w.TiledRows);
            Action<int, int> share = (w.Type, kernel) switch
            {
                (QuantizationType.Int8, IntegerKernel.AvxVnni) => (lo, hi) => Outputs<Tile256<Int8VnniBlocks>, Vector256<float>, Int8VnniBlocks>(call, lo, hi),
                (QuantizationType.Int8, _) => (lo, hi) => Outputs<Tile256<Int8Blocks>, Vector256<float>, Int8Blocks>(call, lo, hi),
                (QuantizationType.Nf4, IntegerKernel.AvxVnni) => (lo, hi) => Outputs<Tile256<Nf4VnniBlocks>, Vector256<float>, Nf4VnniBlocks>(call, lo, hi),
                (QuantizationType.Nf4, _) => (lo, hi) => Outputs<Tile256<Nf4Blocks>, Vector256<float>, Nf4Blocks>(call, lo, hi),
                (_, IntegerKernel.Avx512) => (lo, hi) => Outputs<Int4Tile512, Vector512<float>, Int4Blocks>(call, lo, hi),
                (_, IntegerKernel.AvxVnni) => (lo, hi) => Outputs<Tile256<Int4VnniBlocks>, Vector256<float>, Int4VnniBlocks>(call, lo, hi),
                _ => (lo, hi) => Outputs<Tile256<Int4Blocks>, Vector256<float>, Int4Blocks>(call, lo, hi),
            };
            KernelThreads.RunShares(w.OutFeatures, share);
        }
    }

    /// <summary>Whether <paramref name="kernel"/> runs here for <paramref name="type"/>.</summary>
    internal static bool Supports(IntegerKernel kernel, QuantizationType type) => Supported && kernel switch
    {
        IntegerKernel.Avx2 => true,
        IntegerKernel.AvxVnni => AvxVnni.IsSupported,
        IntegerKernel.Avx512 => type == QuantizationType.Int4 && Avx512BW.IsSupported,
        _ => false,
    };

    /// <summary>The kernel a step uses: the widest this CPU has for the type.</summary>
    internal static IntegerKernel Fastest(QuantizationType type) =>
        Supports(IntegerKernel.Avx512, type) ? IntegerKernel.Avx512 : Supports(IntegerKernel.AvxVnni, type) ? IntegerKernel.AvxVnni : IntegerKernel.Avx2;

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

    /// <summary>One block's 32 products of weight and input levels, as eight int32 partial sums.</summary>
    private interface IBlocks
    {
        static abstract int BlockBytes { get; }
        /// <summary>
        /// What the bytes the dot product reads add to each weight level (int4's stored level + 8; 128 where int8's
        /// signed levels are read as unsigned for <c>vpdpbusd</c>): the block's dot product is too large by this times
        /// the input levels' sum, which is taken off in integers before the conversion, so the sums stay exact.
        /// </summary>
        static abstract int Offset { get; }
        static abstract Vector256<int> Dot(byte* weights, sbyte* levels);
    }

    private readonly struct Int8Blocks : IBlocks
    {
        public static int BlockBytes => Block;
        public static int Offset => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels) => SignedDot(Avx.LoadVector256((sbyte*)weights), Avx.LoadVector256(levels));

        /// <summary>vpmaddubsw multiplies unsigned by signed bytes: |w| times x carrying w's sign (ggml's trick).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> SignedDot(Vector256<sbyte> w, Vector256<sbyte> x)
        {
            var pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(x, w));
            return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
        }
    }

    private readonly struct Int8VnniBlocks : IBlocks
    {
        public static int BlockBytes => Block;
        public static int Offset => 128;

        /// <summary>vpdpbusd also takes unsigned × signed bytes: w + 128 (w with its sign bit flipped) times x, in one instruction.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels) =>
            AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(weights) ^ Vector256.Create((byte)0x80), Avx.LoadVector256(levels));
    }

    private readonly struct Int4Blocks : IBlocks
    {
        public static int BlockBytes => Block / 2;
        public static int Offset => QuantizedWeight.Int4Offset;

        /// <summary>
        /// The stored nibbles (level + 8, unsigned) times x. The 16 bytes go to both halves in one load; the upper half
        /// shifted right by 4 (per 32-bit lane: a byte's high nibble lands in its own low bits) and both masked give
        /// inputs 0–15 then 16–31.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels)
        {
            var pairs = Avx2.MultiplyAddAdjacent(Nibbles(weights), Avx.LoadVector256(levels));
            return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Nibbles(byte* weights)
        {
            var both = Avx2.BroadcastVector128ToVector256(weights);
            return Avx2.ShiftRightLogicalVariable(both.AsUInt32(), Vector256.Create(0u, 0, 0, 0, 4, 4, 4, 4)).AsByte() & Vector256.Create((byte)0x0F);
        }
    }

    private readonly struct Int4VnniBlocks : IBlocks
    {
        public static int BlockBytes => Block / 2;
        public static int Offset => QuantizedWeight.Int4Offset;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels) =>
            AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Int4Blocks.Nibbles(weights), Avx.LoadVector256(levels));
    }

    /// <summary>nf4: the block's 32 indices (int4's nibbles) looked up into their signed levels with one byte shuffle, then int8's dot product.</summary>
    private readonly struct Nf4Blocks : IBlocks
    {
        public static int BlockBytes => Block / 2;
        public static int Offset => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels) =>
            Int8Blocks.SignedDot(Avx2.Shuffle(Vector256.Create(NormalFloat4.LevelTable), Int4Blocks.Nibbles(weights).AsSByte()), Avx.LoadVector256(levels));
    }

    /// <summary>nf4 with <c>vpdpbusd</c>: the shuffle looks up level + 128 (unsigned), taken off as int8's is.</summary>
    private readonly struct Nf4VnniBlocks : IBlocks
    {
        public static int BlockBytes => Block / 2;
        public static int Offset => 128;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(byte* weights, sbyte* levels)
        {
            var unsigned = Vector256.Create(NormalFloat4.LevelTable).AsByte() ^ Vector256.Create((byte)0x80);
            return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Shuffle(unsigned, Int4Blocks.Nibbles(weights)), Avx.LoadVector256(levels));
        }
    }

    /// <summary>Outputs [lo, hi) for every input row: the whole tiles, then the rows stored one by one past the last.</summary>
    private static void Outputs<TTile, TSums, TBlocks>(Call call, int lo, int hi)
        where TTile : struct, ITile<TSums> where TSums : struct where TBlocks : struct, IBlocks =>
        RowsPastTiles<TBlocks>(call, Tiles<TTile, TSums>(call, lo, hi), hi);

    /// <summary>How a pass multiplies one block of a tile's four rows by an input block, in <typeparamref name="TSums"/> vectors.</summary>
    private interface ITile<TSums> where TSums : struct
    {
        /// <summary>The bytes of one block of the tile's four rows (they lie together: <see cref="QuantizedWeight"/>).</summary>
        static abstract int TileBlockBytes { get; }
        /// <summary>A group's four row scales laid out as the sums' lanes are.</summary>
        static abstract TSums Scales(float* groupScales);
        /// <summary>The four rows' exact integer products with the input block, scaled and added to <paramref name="sums"/>.</summary>
        static abstract TSums Add(TSums sums, TSums scales, byte* tileBlock, sbyte* levels, int levelSum, float inputScale);
        /// <summary>The four rows' totals [r0 r1 r2 r3].</summary>
        static abstract Vector128<float> Total(TSums sums);
    }

    /// <summary>
    /// AVX2: four 256-bit dot products (<typeparamref name="TBlocks"/>) whose partial sums are added across first
    /// ([r0 r1 r2 r3] in each half), then one conversion and one FMA for the four: measured 1.3× faster than four of
    /// each for int4 in L1.
    /// </summary>
    private readonly struct Tile256<TBlocks> : ITile<Vector256<float>> where TBlocks : struct, IBlocks
    {
        public static int TileBlockBytes => QuantizedWeight.TileRows * TBlocks.BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Scales(float* groupScales)
        {
            var four = Sse.LoadVector128(groupScales);
            return Vector256.Create(four, four);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Add(Vector256<float> sums, Vector256<float> scales, byte* tileBlock, sbyte* levels, int levelSum, float inputScale)
        {
            int step = TBlocks.BlockBytes;
            var rows = Avx2.HorizontalAdd(Avx2.HorizontalAdd(TBlocks.Dot(tileBlock, levels), TBlocks.Dot(tileBlock + step, levels)),
                                          Avx2.HorizontalAdd(TBlocks.Dot(tileBlock + 2 * step, levels), TBlocks.Dot(tileBlock + 3 * step, levels)));
            if (TBlocks.Offset != 0) rows -= Vector256.Create(TBlocks.Offset / 2 * levelSum); // half in each half
            return Fma.MultiplyAdd(Avx.ConvertToVector256Single(rows), scales * Vector256.Create(inputScale), sums);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Total(Vector256<float> sums) => sums.GetLower() + sums.GetUpper();
    }

    /// <summary>
    /// int4 in 512-bit vectors: a block of the tile's four rows is 64 contiguous bytes, one load; its low and high
    /// nibbles (inputs 0–15 and 16–31 of each row) meet the input block's halves, each broadcast to the four 128-bit
    /// lanes, so lane k sums row k. Half the instructions of <see cref="Tile256{TBlocks}"/>'s dot products and adds.
    /// </summary>
    private readonly struct Int4Tile512 : ITile<Vector512<float>>
    {
        public static int TileBlockBytes => QuantizedWeight.TileRows * Block / 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Scales(float* groupScales) => // row k's scale to lane k
            Avx512F.PermuteVar16x32(Avx512F.BroadcastVector128ToVector512(groupScales), Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Add(Vector512<float> sums, Vector512<float> scales, byte* tileBlock, sbyte* levels, int levelSum, float inputScale)
        {
            var mask = Vector512.Create((byte)0x0F);
            var packed = Vector512.Load(tileBlock);
            var low = packed & mask;
            var high = Avx512BW.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & mask;
            var pairs = Avx512BW.MultiplyAddAdjacent(low, Avx512F.BroadcastVector128ToVector512((int*)levels).AsSByte())
                      + Avx512BW.MultiplyAddAdjacent(high, Avx512F.BroadcastVector128ToVector512((int*)(levels + 16)).AsSByte());
            // The offset a level carries (Int4Blocks.Offset), a quarter in each of a lane's four sums.
            var rows = Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1)) - Vector512.Create(Int4Blocks.Offset / 4 * levelSum);
            return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(rows), scales * Vector512.Create(inputScale), sums);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Total(Vector512<float> sums)
        {
            var (l01, l23) = (sums.GetLower(), sums.GetUpper());
            return Sse3.HorizontalAdd(Sse3.HorizontalAdd(l01.GetLower(), l01.GetUpper()), Sse3.HorizontalAdd(l23.GetLower(), l23.GetUpper()));
        }
    }

    /// <summary>
    /// The whole tiles of [lo, hi), returning where they end: a tile of four weight rows at a time against each input
    /// row in turn (the tile stays in L1 while the input rows pass over it), each input block loaded once for the
    /// four. The tile's blocks and scales are interleaved (<see cref="QuantizedWeight"/>), so the pass reads one
    /// sequential stream. Shares start and end at multiples of four, the last at the end
    /// (<see cref="KernelThreads.RunShares"/>), so only the rows past the last tile remain.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Tiles<TTile, TSums>(Call call, int lo, int hi) where TTile : struct, ITile<TSums> where TSums : struct
    {
        const int Tile = QuantizedWeight.TileRows;
        byte* weights = (byte*)call.Weights;
        float* weightScales = (float*)call.WeightScales, inputScales = (float*)call.InputScales, y = (float*)call.Outputs;
        int* inputSums = (int*)call.InputSums;
        sbyte* levels = (sbyte*)call.Levels;
        int blocks = call.Blocks, perGroup = call.BlocksPerGroup, step = TTile.TileBlockBytes, groups = call.Groups;
        long rowBytes = call.RowBytes;
        int o = lo;
        for (; o + Tile <= hi && o < call.TiledRows; o += Tile)
        {
            byte* tile = weights + o * rowBytes;
            float* tileScales = weightScales + (long)o * groups;
            for (int r = 0; r < call.Rows; r++)
            {
                sbyte* xb = levels + (long)r * blocks * Block;
                float* xScales = inputScales + (long)r * blocks;
                int* xSums = inputSums + (long)r * blocks;
                var sums = default(TSums);
                byte* wb = tile;
                float* d = tileScales;
                for (int first = 0; first < blocks; first += perGroup, d += Tile)
                {
                    var scales = TTile.Scales(d);
                    int end = Math.Min(blocks, first + perGroup);
                    for (int b = first; b < end; b++, wb += step, xb += Block)
                    {
                        // Half a KB ahead in the stream while the first input row passes (measured best of 256 B–2 KB).
                        if (r == 0) { Sse.Prefetch0(wb + 512); if (step > 64) Sse.Prefetch0(wb + 576); }
                        sums = TTile.Add(sums, scales, wb, xb, xSums[b], xScales[b]);
                    }
                }
                TTile.Total(sums).Store(y + (long)r * call.Out + o);
            }
        }
        System.Diagnostics.Debug.Assert(o >= call.TiledRows || o == hi, "a share ended inside a tile");
        return o;
    }

    /// <summary>The rows [o, hi) past the last whole tile, stored row by row: the same sums, one weight row at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowsPastTiles<TBlocks>(Call call, int o, int hi) where TBlocks : struct, IBlocks
    {
        byte* weights = (byte*)call.Weights;
        float* weightScales = (float*)call.WeightScales, inputScales = (float*)call.InputScales, y = (float*)call.Outputs;
        int* inputSums = (int*)call.InputSums;
        sbyte* levels = (sbyte*)call.Levels;
        int blocks = call.Blocks, perGroup = call.BlocksPerGroup, step = TBlocks.BlockBytes, groups = call.Groups;
        long rowBytes = call.RowBytes;
        for (; o < hi; o++)
        {
            float* scales = weightScales + (long)o * groups;
            for (int r = 0; r < call.Rows; r++)
            {
                byte* wb = weights + o * rowBytes;
                sbyte* xb = levels + (long)r * blocks * Block;
                float* xScales = inputScales + (long)r * blocks;
                int* xSums = inputSums + (long)r * blocks;
                var a = Vector256<float>.Zero;
                for (int g = 0, first = 0; first < blocks; g++, first += perGroup)
                {
                    var s = Vector256.Create(scales[g]);
                    int end = Math.Min(blocks, first + perGroup);
                    for (int b = first; b < end; b++, wb += step, xb += Block)
                    {
                        var dot = TBlocks.Dot(wb, xb);
                        if (TBlocks.Offset != 0) dot -= Vector256.Create(TBlocks.Offset / 8 * xSums[b]); // an eighth in each lane
                        a = Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), s * Vector256.Create(xScales[b]), a);
                    }
                }
                y[(long)r * call.Out + o] = Vector256.Sum(a);
            }
        }
    }

    private static void Check(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        if (rows < 1 || x.Length != (long)rows * w.InFeatures) throw new ArgumentException($"x holds {x.Length} values, not {rows} rows of {w.InFeatures}");
    }
}
