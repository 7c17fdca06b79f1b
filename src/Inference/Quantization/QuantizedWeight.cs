using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>The integer formats a weight can be stored in.</summary>
public enum QuantizationType
{
    /// <summary>8-bit signed levels in [−127, 127], one byte each.</summary>
    Int8,
    /// <summary>4-bit signed levels in [−7, 7], stored as level + 8, two per byte.</summary>
    Int4,
    /// <summary>4-bit indices into <see cref="NormalFloat4"/>'s code book (its levels in [−127, 127]), two per byte as int4's.</summary>
    Nf4,
}

/// <summary>
/// A weight matrix [out, in] quantized symmetrically per group: every run of <see cref="GroupSize"/> inputs of an
/// output row shares one float scale (its largest |w| ÷ 127 for int8 and nf4, ÷ 7 for int4) and each weight is rounded
/// to the nearest level times it (round half away from zero): int8's and int4's levels are the integers up to 127 and 7,
/// nf4's the 16 of <see cref="NormalFloat4"/>. Groups never span rows; the last group of a row may be shorter. The
/// group size is a multiple of <see cref="BlockSize"/>.
/// <para>A row is ⌈in ÷ 32⌉ blocks of 32 inputs, the last padded with level 0. An int8 block is 32 signed bytes; an
/// int4 or nf4 block is 16 bytes, byte j holding input j's code (int4: level + 8; nf4: the index of its level) in its
/// low nibble and input j + 16's in its high nibble (ggml's q4_0 order: one 16-byte load unpacks to the block's 32
/// inputs in order).</para>
/// <para>In memory (<see cref="Data"/>, <see cref="Scales"/>) rows are kept in tiles of <see cref="TileRows"/>, the
/// rows the kernel multiplies in one pass, interleaved block by block: block 0 of rows 0–3, block 1 of rows 0–3, …,
/// and each group's four scales side by side; rows past the last whole tile follow row by row. Why: a pass then reads
/// one sequential stream that the hardware prefetcher follows from tile to tile, where four row streams ended before
/// it ramped up (measured on the decode's shapes, two cores: 7–10 → 11 GB/s). Checkpoints store plain row-major
/// [out, row bytes] levels and [out, groups] scales (<see cref="CopyRowMajorTo"/>, <see cref="SetRowMajor"/>).</para>
/// </summary>
public sealed class QuantizedWeight
{
    /// <summary>Inputs per block: the unit the kernel's integer dot products work on (one 256-bit vector of int8).</summary>
    public const int BlockSize = 32;

    public QuantizationType Type { get; }
    public int OutFeatures { get; }
    public int InFeatures { get; }
    public int GroupSize { get; }
    /// <summary>Rows a tile interleaves (the integer kernel's four rows a pass).</summary>
    public const int TileRows = 4;

    /// <summary>The levels, <see cref="RowBytes"/> bytes a row, in tiles (see the class's remarks; <see cref="BlockOffset"/>).</summary>
    public byte[] Data { get; }
    /// <summary>One scale per row and group, in tiles (<see cref="ScaleIndex"/>).</summary>
    public float[] Scales { get; }

    /// <summary>Rows that lie in whole tiles; the rest are stored row by row.</summary>
    public int TiledRows => OutFeatures / TileRows * TileRows;

    /// <summary>Where block <paramref name="b"/> of row <paramref name="o"/> starts in <see cref="Data"/>.</summary>
    public long BlockOffset(int o, int b) => o < TiledRows
        ? (long)(o - o % TileRows) * RowBytes + ((long)b * TileRows + o % TileRows) * BlockBytes
        : (long)o * RowBytes + (long)b * BlockBytes;

    /// <summary>Where the scale of group <paramref name="g"/> of row <paramref name="o"/> is in <see cref="Scales"/>.</summary>
    public long ScaleIndex(int o, int g) => o < TiledRows
        ? (long)(o - o % TileRows) * GroupsPerRow + (long)g * TileRows + o % TileRows
        : (long)o * GroupsPerRow + g;

    /// <summary>The scale of group <paramref name="g"/> of row <paramref name="o"/>.</summary>
    public float Scale(int o, int g) => Scales[ScaleIndex(o, g)];

    public int BlocksPerRow => (InFeatures + BlockSize - 1) / BlockSize;
    public int GroupsPerRow => GroupsOf(InFeatures, GroupSize);
    public int BlockBytes => BlockBytesOf(Type);
    public int RowBytes => RowBytesOf(Type, InFeatures);

    public static int RowBytesOf(QuantizationType type, int inFeatures) => (inFeatures + BlockSize - 1) / BlockSize * BlockBytesOf(type);
    public static int GroupsOf(int inFeatures, int groupSize) => (inFeatures + groupSize - 1) / groupSize;
    public int MaxLevel => MaxLevelOf(Type);

    public static int BlockBytesOf(QuantizationType type) => type == QuantizationType.Int8 ? BlockSize : BlockSize / 2;
    public static int MaxLevelOf(QuantizationType type) => type == QuantizationType.Int4 ? 7 : 127;

    /// <summary>What int4 adds to a level to store it (levels −7 … 7 as nibbles 1 … 15).</summary>
    internal const int Int4Offset = 8;

    /// <summary>A weight from row-major levels [out, row bytes] and scales [out, groups], as a checkpoint stores them.</summary>
    public QuantizedWeight(QuantizationType type, int outFeatures, int inFeatures, int groupSize, byte[] rowMajorData, float[] rowMajorScales)
        : this(type, outFeatures, inFeatures, groupSize)
    {
        SetRowMajor(rowMajorData, rowMajorScales);
    }

    /// <summary>All levels 0 and scales 0.</summary>
    private QuantizedWeight(QuantizationType type, int outFeatures, int inFeatures, int groupSize)
    {
        if (outFeatures < 1 || inFeatures < 1) throw new ArgumentException($"a quantized weight needs positive shapes, got [{outFeatures}, {inFeatures}]");
        CheckGroupSize(groupSize);
        Type = type; OutFeatures = outFeatures; InFeatures = inFeatures; GroupSize = groupSize;
        Data = new byte[(long)outFeatures * RowBytes];
        if (type != QuantizationType.Int8) Array.Fill(Data, (byte)(CodeOf(type, 0) * 0x11)); // level 0 everywhere, padding included
        Scales = new float[(long)outFeatures * GroupsPerRow];
    }

    /// <summary>Replaces the levels and scales with row-major ones (a checkpoint's), checking their sizes and scales first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // every block of the model: never the slow first tier
    public void SetRowMajor(ReadOnlySpan<byte> levels, ReadOnlySpan<float> scales)
    {
        if (levels.Length != (long)OutFeatures * RowBytes) throw new ArgumentException($"{Type} data for [{OutFeatures}, {InFeatures}] is {(long)OutFeatures * RowBytes} bytes, got {levels.Length}");
        if (scales.Length != (long)OutFeatures * GroupsPerRow) throw new ArgumentException($"[{OutFeatures}, {InFeatures}] in groups of {GroupSize} has {(long)OutFeatures * GroupsPerRow} scales, got {scales.Length}");
        if (InvalidScale(scales) is { } bad) throw new ArgumentException($"scales must be finite and non-negative, found {bad}");
        for (int o = 0; o < OutFeatures; o++)
        {
            for (int b = 0; b < BlocksPerRow; b++)
                levels.Slice(o * RowBytes + b * BlockBytes, BlockBytes).CopyTo(Data.AsSpan((int)BlockOffset(o, b), BlockBytes));
            for (int g = 0; g < GroupsPerRow; g++) Scales[ScaleIndex(o, g)] = scales[o * GroupsPerRow + g];
        }
    }

    /// <summary>The levels [out, row bytes] and scales [out, groups] row-major, as a checkpoint stores them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // every block of the model: never the slow first tier
    public void CopyRowMajorTo(Span<byte> levels, Span<float> scales)
    {
        if (levels.Length != Data.Length || scales.Length != Scales.Length) throw new ArgumentException($"row-major copies need {Data.Length} bytes and {Scales.Length} scales");
        for (int o = 0; o < OutFeatures; o++)
        {
            for (int b = 0; b < BlocksPerRow; b++)
                Data.AsSpan((int)BlockOffset(o, b), BlockBytes).CopyTo(levels.Slice(o * RowBytes + b * BlockBytes, BlockBytes));
            for (int g = 0; g < GroupsPerRow; g++) scales[o * GroupsPerRow + g] = Scales[ScaleIndex(o, g)];
        }
    }

    /// <summary>The first scale that is negative or not finite, or null when all are valid.</summary>
    public static float? InvalidScale(ReadOnlySpan<float> scales)
    {
        foreach (var s in scales)
            if (!float.IsFinite(s) || s < 0) return s;
        return null;
    }

    /// <summary>A group size is a positive multiple of <see cref="BlockSize"/>.</summary>
    public static void CheckGroupSize(int groupSize)
    {
        if (groupSize < BlockSize || groupSize % BlockSize != 0)
            throw new ArgumentException($"group size must be a positive multiple of {BlockSize} (32, 64, 128, …), got {groupSize}");
    }

    /// <summary>Quantizes a row-major [out, in] float matrix.</summary>
    public static QuantizedWeight Quantize(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, QuantizationType type, int groupSize)
    {
        if (outFeatures < 1 || inFeatures < 1 || weight.Length != (long)outFeatures * inFeatures)
            throw new ArgumentException($"{weight.Length} weights are not [{outFeatures}, {inFeatures}]");
        var result = Empty(new QuantizationConfig(type, groupSize), outFeatures, inFeatures);
        for (int o = 0; o < outFeatures; o++) result.QuantizeRow(o, weight.Slice(o * inFeatures, inFeatures));
        return result;
    }

    /// <summary>Quantizes a dense [out, in] weight tensor (any float dtype and device), its rows split across the cores.</summary>
    public static unsafe QuantizedWeight FromTensor(Tensor weightOutIn, QuantizationConfig config)
    {
        if (weightOutIn.dim() != 2) throw new ArgumentException($"a weight to quantize must be [out, in], got [{string.Join(", ", weightOutIn.shape)}]");
        int outFeatures = checked((int)weightOutIn.shape[0]), inFeatures = checked((int)weightOutIn.shape[1]);
        var result = Empty(config, outFeatures, inFeatures);
        // Read in place from the tensor's memory: a managed copy of the float values (154 MB for GPT-2's wte) stayed
        // in the process's resident set after loading, making an int4 model's larger than the float32 one's.
        // In a scope, so the intermediate handles (detach's, to's) are freed too: left to the finalizer, they kept every
        // dense weight alive after its module let go of it (GPT-2 small quantized to int4 stayed 638 MB resident, 256
        // once the GC had run).
        using var scope = torch.NewDisposeScope();
        var cpu = weightOutIn.detach().to(ScalarType.Float32, torch.CPU).contiguous();
        fixed (byte* memory = cpu.bytes)
        {
            var values = (nint)memory;
            try
            {
                Parallel.For(0, Environment.ProcessorCount, share =>
                {
                    int first = (int)((long)outFeatures * share / Environment.ProcessorCount), last = (int)((long)outFeatures * (share + 1) / Environment.ProcessorCount);
                    for (int o = first; o < last; o++) result.QuantizeRow(o, new ReadOnlySpan<float>((float*)values + (long)o * inFeatures, inFeatures));
                });
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0) { System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]); }
        }
        return result;
    }

    /// <summary>All levels 0 and scales 0, of the right sizes (a quantized checkpoint's tensors are read into it).</summary>
    public static QuantizedWeight Empty(QuantizationConfig config, int outFeatures, int inFeatures)
    {
        if (outFeatures < 1 || inFeatures < 1) throw new ArgumentException($"a quantized weight needs positive shapes, got [{outFeatures}, {inFeatures}]");
        return new QuantizedWeight(config.Type, outFeatures, inFeatures, config.GroupSize);
    }

    /// <summary>Rounds row <paramref name="o"/> of the dense weight into this one's levels and scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // every weight of the model: never the slow first tier
    private void QuantizeRow(int o, ReadOnlySpan<float> row)
    {
        for (int g = 0; g < GroupsPerRow; g++)
        {
            int start = g * GroupSize, end = Math.Min(InFeatures, start + GroupSize);
            float max = 0;
            for (int i = start; i < end; i++)
            {
                if (!float.IsFinite(row[i])) throw new ArgumentException($"weight [{o}, {i}] is {row[i]}: only finite weights can be quantized");
                max = Math.Max(max, Math.Abs(row[i]));
            }
            float scale = max / MaxLevel;
            Scales[ScaleIndex(o, g)] = scale;
            for (int i = start; i < end; i++) Store(o, i, CodeOf(Type, scale == 0 ? 0 : row[i] / scale));
        }
    }

    /// <summary>What is stored for a weight of <paramref name="level"/> times its scale: the nearest level's code.</summary>
    private static int CodeOf(QuantizationType type, float level) => type switch
    {
        QuantizationType.Nf4 => NormalFloat4.NearestIndex(level),
        _ => (int)Math.Clamp(MathF.Round(level, MidpointRounding.AwayFromZero), -MaxLevelOf(type), MaxLevelOf(type)) + (type == QuantizationType.Int4 ? Int4Offset : 0),
    };

    /// <summary>Where weight [o, i] lives in <see cref="Data"/>: its byte, and (int4) whether it is the high nibble.</summary>
    private (long Byte, bool High) Position(int o, int i)
    {
        int j = i % BlockSize;
        long block = BlockOffset(o, i / BlockSize);
        return Type == QuantizationType.Int8 ? (block + j, false) : (block + j % (BlockSize / 2), j >= BlockSize / 2);
    }

    private void Store(int o, int i, int code)
    {
        var (at, high) = Position(o, i);
        if (Type == QuantizationType.Int8) Data[at] = (byte)(sbyte)code;
        else Data[at] = (byte)(high ? (Data[at] & 0x0F) | (code << 4) : (Data[at] & 0xF0) | code);
    }

    /// <summary>The integer level of weight [o, i].</summary>
    public int Level(int o, int i)
    {
        var (at, high) = Position(o, i);
        byte b = Data[at];
        int code = high ? b >> 4 : b & 0xF;
        return Type switch { QuantizationType.Int8 => (sbyte)b, QuantizationType.Int4 => code - Int4Offset, _ => NormalFloat4.Levels[code] };
    }

    /// <summary>The float matrix the quantized values stand for (level × its group's scale), row-major [out, in].</summary>
    public float[] Dequantize()
    {
        var weight = new float[(long)OutFeatures * InFeatures];
        for (int o = 0; o < OutFeatures; o++) DequantizeRow(o, weight.AsSpan(o * InFeatures, InFeatures));
        return weight;
    }

    /// <summary>Row <paramref name="o"/> as floats (the embedding lookup of a tied, quantized <c>wte</c>; the dequantized products).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    public unsafe void DequantizeRow(int o, Span<float> destination)
    {
        if (destination.Length < InFeatures) throw new ArgumentException($"a row has {InFeatures} values, the destination {destination.Length}");
        int full = Avx2.IsSupported ? InFeatures / BlockSize : 0, blocksPerGroup = GroupSize / BlockSize;
        // A row's blocks and scales lie evenly spaced (BlockOffset, ScaleIndex): TileRows apart in a tile, side by side
        // past the tiles. Walked by pointer, one scale a group, not by index arithmetic per block: measured (one core,
        // int8) 5.0 → 7.4 G weights a second from cache, all of GPT-2 small's block weights 19.5 → 13.7 ms; the
        // dequantized products at 8 rows (two cores) 21.9 → 18.3 ms. A 512-bit variant measured slower.
        int tileRows = o < TiledRows ? TileRows : 1, blockStride = tileRows * BlockBytes;
        fixed (byte* data = Data)
        fixed (float* scales = Scales)
        fixed (float* y = destination)
        {
            byte* block = data + BlockOffset(o, 0);
            float* scale = scales + ScaleIndex(o, 0);
            float* output = y;
            // Whole blocks eight values an instruction: int8 sign-extended; int4's nibbles (level + 8) less 8, nf4's
            // looked up, the low nibbles first (the block's inputs 0–15), then the high ones (16–31). A block lies in one group.
            for (int b = 0, g = 0; b < full; g++)
            {
                var s = Vector256.Create(scale[(long)g * tileRows]);
                for (int end = Math.Min(full, b + blocksPerGroup); b < end; b++, block += blockStride, output += BlockSize)
                    if (Type == QuantizationType.Int8)
                    {
                        sbyte* levels = (sbyte*)block;
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(levels)) * s).Store(output);
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(levels + 8)) * s).Store(output + 8);
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(levels + 16)) * s).Store(output + 16);
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(levels + 24)) * s).Store(output + 24);
                    }
                    else
                    {
                        var packed = Vector128.Load(block);
                        var mask = Vector128.Create((byte)0x0F);
                        var (low, high) = LevelsOfCodes(packed & mask, Vector128.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & mask);
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(low)) * s).Store(output);
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(low, 8))) * s).Store(output + 8);
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(high)) * s).Store(output + 16);
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(high, 8))) * s).Store(output + 24);
                    }
            }
            for (int i = full * BlockSize; i < InFeatures; i++) // the rest (a short last block, or no AVX2) one value at a time
                y[i] = Scale(o, i / GroupSize) * Level(o, i);
        }
    }

    /// <summary>A 4-bit block's levels from its codes (low and high nibbles): int4's less 8, nf4's looked up.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private (Vector128<sbyte> Low, Vector128<sbyte> High) LevelsOfCodes(Vector128<byte> low, Vector128<byte> high) => Type == QuantizationType.Nf4
        ? (Ssse3.Shuffle(NormalFloat4.LevelTable, low.AsSByte()), Ssse3.Shuffle(NormalFloat4.LevelTable, high.AsSByte()))
        : ((low - Vector128.Create((byte)Int4Offset)).AsSByte(), (high - Vector128.Create((byte)Int4Offset)).AsSByte());

    /// <summary>Bytes a step reads: the values and the scales.</summary>
    public long Bytes => Data.LongLength + Scales.LongLength * sizeof(float);
}
