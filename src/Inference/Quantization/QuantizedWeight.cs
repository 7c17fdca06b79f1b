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
}

/// <summary>
/// A weight matrix [out, in] quantized symmetrically per group: every run of <see cref="GroupSize"/> inputs of an
/// output row shares one float scale (its largest |w| ÷ 127 for int8, ÷ 7 for int4) and each weight is rounded to
/// the nearest multiple of it (round half away from zero). Groups never span rows; the last group of a row may be
/// shorter. The group size is a multiple of <see cref="BlockSize"/>.
/// <para>Layout: each row is stored as ⌈in ÷ 32⌉ blocks of 32 inputs, the last padded with level 0. An int8 block is
/// 32 signed bytes; an int4 block is 16 bytes, byte j holding input j in its low nibble and input j + 16 in its high
/// nibble (ggml's q4_0 order: one 16-byte load unpacks to the block's 32 inputs in order).</para>
/// </summary>
public sealed class QuantizedWeight
{
    /// <summary>Inputs per block: the unit the kernel's integer dot products work on (one 256-bit vector of int8).</summary>
    public const int BlockSize = 32;

    public QuantizationType Type { get; }
    public int OutFeatures { get; }
    public int InFeatures { get; }
    public int GroupSize { get; }
    /// <summary>Row-major blocks, <see cref="RowBytes"/> bytes per row.</summary>
    public byte[] Data { get; }
    /// <summary>[out, groups per row] scales.</summary>
    public float[] Scales { get; }

    public int BlocksPerRow => (InFeatures + BlockSize - 1) / BlockSize;
    public int GroupsPerRow => GroupsOf(InFeatures, GroupSize);
    public int BlockBytes => BlockBytesOf(Type);
    public int RowBytes => RowBytesOf(Type, InFeatures);

    public static int RowBytesOf(QuantizationType type, int inFeatures) => (inFeatures + BlockSize - 1) / BlockSize * BlockBytesOf(type);
    public static int GroupsOf(int inFeatures, int groupSize) => (inFeatures + groupSize - 1) / groupSize;
    public int MaxLevel => MaxLevelOf(Type);

    public static int BlockBytesOf(QuantizationType type) => type == QuantizationType.Int8 ? BlockSize : BlockSize / 2;
    public static int MaxLevelOf(QuantizationType type) => type == QuantizationType.Int8 ? 127 : 7;

    public QuantizedWeight(QuantizationType type, int outFeatures, int inFeatures, int groupSize, byte[] data, float[] scales)
    {
        if (outFeatures < 1 || inFeatures < 1) throw new ArgumentException($"a quantized weight needs positive shapes, got [{outFeatures}, {inFeatures}]");
        CheckGroupSize(groupSize);
        Type = type; OutFeatures = outFeatures; InFeatures = inFeatures; GroupSize = groupSize;
        if (data.LongLength != (long)outFeatures * RowBytes) throw new ArgumentException($"{type} data for [{outFeatures}, {inFeatures}] is {(long)outFeatures * RowBytes} bytes, got {data.LongLength}");
        if (scales.LongLength != (long)outFeatures * GroupsPerRow) throw new ArgumentException($"[{outFeatures}, {inFeatures}] in groups of {groupSize} has {(long)outFeatures * GroupsPerRow} scales, got {scales.LongLength}");
        if (InvalidScale(scales) is { } bad) throw new ArgumentException($"scales must be finite and non-negative, found {bad}");
        Data = data; Scales = scales;
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
        using var cpu = weightOutIn.detach().to(ScalarType.Float32, torch.CPU).contiguous();
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
        CheckGroupSize(config.GroupSize);
        var data = new byte[(long)outFeatures * RowBytesOf(config.Type, inFeatures)];
        if (config.Type == QuantizationType.Int4) Array.Fill(data, (byte)0x88); // level 0 everywhere, padding included
        return new QuantizedWeight(config.Type, outFeatures, inFeatures, config.GroupSize, data, new float[(long)outFeatures * GroupsOf(inFeatures, config.GroupSize)]);
    }

    /// <summary>Rounds row <paramref name="o"/> of the dense weight into this one's levels and scales.</summary>
    private void QuantizeRow(int o, ReadOnlySpan<float> row)
    {
        var stored = Data.AsSpan((int)((long)o * RowBytes), RowBytes);
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
            Scales[(long)o * GroupsPerRow + g] = scale;
            for (int i = start; i < end; i++)
                Store(Type, stored, i, scale == 0 ? 0 : (int)Math.Clamp(MathF.Round(row[i] / scale, MidpointRounding.AwayFromZero), -MaxLevel, MaxLevel));
        }
    }

    /// <summary>Where input <paramref name="i"/> of a row lives: its byte, and (int4) whether it is the high nibble.</summary>
    private static (int Byte, bool High) Position(QuantizationType type, int i)
    {
        if (type == QuantizationType.Int8) return (i, false);
        int block = i / BlockSize, j = i % BlockSize;
        return (block * (BlockSize / 2) + j % (BlockSize / 2), j >= BlockSize / 2);
    }

    private static void Store(QuantizationType type, Span<byte> row, int i, int level)
    {
        var (at, high) = Position(type, i);
        if (type == QuantizationType.Int8) row[at] = (byte)(sbyte)level;
        else row[at] = (byte)(high ? (row[at] & 0x0F) | ((level + 8) << 4) : (row[at] & 0xF0) | (level + 8));
    }

    /// <summary>The integer level of weight [o, i].</summary>
    public int Level(int o, int i)
    {
        var (at, high) = Position(Type, i);
        byte b = Data[(long)o * RowBytes + at];
        return Type == QuantizationType.Int8 ? (sbyte)b : (high ? b >> 4 : b & 0xF) - 8;
    }

    /// <summary>The float matrix the quantized values stand for (level × its group's scale), row-major [out, in].</summary>
    public float[] Dequantize()
    {
        var weight = new float[(long)OutFeatures * InFeatures];
        for (int o = 0; o < OutFeatures; o++) DequantizeRow(o, weight.AsSpan(o * InFeatures, InFeatures));
        return weight;
    }

    /// <summary>Row <paramref name="o"/> as floats (the embedding lookup of a tied, quantized <c>wte</c>; the dequantized products).</summary>
    public unsafe void DequantizeRow(int o, Span<float> destination)
    {
        if (destination.Length < InFeatures) throw new ArgumentException($"a row has {InFeatures} values, the destination {destination.Length}");
        int half = BlockSize / 2, full = Avx2.IsSupported ? InFeatures / BlockSize : 0;
        fixed (byte* row = &Data[(long)o * RowBytes])
        fixed (float* scales = &Scales[(long)o * GroupsPerRow], y = destination)
        {
            // Whole blocks eight values an instruction: int8 sign-extended; int4's nibbles (level + 8) less 8, the low
            // nibbles first (the block's inputs 0–15), then the high ones (16–31).
            for (int b = 0; b < full; b++)
            {
                var s = Vector256.Create(scales[b * BlockSize / GroupSize]); // a block lies in one group
                float* output = y + b * BlockSize;
                if (Type == QuantizationType.Int8)
                {
                    sbyte* levels = (sbyte*)row + b * BlockSize;
                    for (int j = 0; j < BlockSize; j += 8) (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(levels + j)) * s).Store(output + j);
                }
                else
                {
                    var packed = Vector128.Load(row + b * half);
                    var mask = Vector128.Create((byte)0x0F);
                    var low = ((packed & mask) - Vector128.Create((byte)8)).AsSByte();
                    var high = ((Vector128.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & mask) - Vector128.Create((byte)8)).AsSByte();
                    (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(low)) * s).Store(output);
                    (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(low, 8))) * s).Store(output + 8);
                    (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(high)) * s).Store(output + 16);
                    (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(high, 8))) * s).Store(output + 24);
                }
            }
            for (int i = full * BlockSize; i < InFeatures; i++) // the rest (a short last block, or no AVX2) one value at a time
                y[i] = scales[i / GroupSize] * Level(o, i);
        }
    }

    /// <summary>Bytes a step reads: the values and the scales.</summary>
    public long Bytes => Data.LongLength + Scales.LongLength * sizeof(float);
}
