namespace Gpt2Orleans.Inference.Quantization;

/// <summary>The integer formats a weight can be stored in.</summary>
public enum QuantizationType
{
    /// <summary>8-bit signed values in [−127, 127], one byte each.</summary>
    Int8,
    /// <summary>4-bit signed values in [−7, 7], two per byte (the low nibble first), stored as value + 8.</summary>
    Int4,
}

/// <summary>
/// A weight matrix [out, in] quantized symmetrically per group: every run of <see cref="GroupSize"/> inputs of an
/// output row shares one float scale (its largest |w| ÷ 127 for int8, ÷ 7 for int4) and each weight is rounded to
/// the nearest multiple of it (round half away from zero). The last group of a row may be shorter. Groups never
/// span rows, so a row's groups are <c>⌈in ÷ group size⌉</c> and rows are independent.
/// </summary>
public sealed class QuantizedWeight
{
    public QuantizationType Type { get; }
    public int OutFeatures { get; }
    public int InFeatures { get; }
    public int GroupSize { get; }
    /// <summary>Row-major values: int8 one sbyte per weight; int4 <see cref="RowBytes"/> bytes per row, two weights a byte.</summary>
    public byte[] Data { get; }
    /// <summary>[out, groups per row] scales.</summary>
    public float[] Scales { get; }

    public int GroupsPerRow => (InFeatures + GroupSize - 1) / GroupSize;
    public int RowBytes => Type == QuantizationType.Int8 ? InFeatures : (InFeatures + 1) / 2;
    public int MaxLevel => Type == QuantizationType.Int8 ? 127 : 7;

    public QuantizedWeight(QuantizationType type, int outFeatures, int inFeatures, int groupSize, byte[] data, float[] scales)
    {
        if (outFeatures < 1 || inFeatures < 1) throw new ArgumentException($"a quantized weight needs positive shapes, got [{outFeatures}, {inFeatures}]");
        if (groupSize < 1) throw new ArgumentException($"group size must be at least 1, got {groupSize}", nameof(groupSize));
        Type = type; OutFeatures = outFeatures; InFeatures = inFeatures; GroupSize = groupSize;
        if (data.Length != (long)outFeatures * RowBytes) throw new ArgumentException($"{type} data for [{outFeatures}, {inFeatures}] is {(long)outFeatures * RowBytes} bytes, got {data.Length}");
        if (scales.Length != (long)outFeatures * GroupsPerRow) throw new ArgumentException($"[{outFeatures}, {inFeatures}] in groups of {groupSize} has {(long)outFeatures * GroupsPerRow} scales, got {scales.Length}");
        if (scales.Any(s => !float.IsFinite(s) || s < 0)) throw new ArgumentException("scales must be finite and non-negative");
        Data = data; Scales = scales;
    }

    /// <summary>Quantizes a row-major [out, in] float matrix.</summary>
    public static QuantizedWeight Quantize(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, QuantizationType type, int groupSize)
    {
        if (weight.Length != (long)outFeatures * inFeatures) throw new ArgumentException($"{weight.Length} weights are not [{outFeatures}, {inFeatures}]");
        if (groupSize < 1) throw new ArgumentException($"group size must be at least 1, got {groupSize}", nameof(groupSize));
        int groups = (inFeatures + groupSize - 1) / groupSize, maxLevel = type == QuantizationType.Int8 ? 127 : 7;
        int rowBytes = type == QuantizationType.Int8 ? inFeatures : (inFeatures + 1) / 2;
        var data = new byte[(long)outFeatures * rowBytes];
        var scales = new float[(long)outFeatures * groups];
        for (int o = 0; o < outFeatures; o++)
        {
            var row = weight.Slice(o * inFeatures, inFeatures);
            for (int g = 0; g < groups; g++)
            {
                int start = g * groupSize, end = Math.Min(inFeatures, start + groupSize);
                float max = 0;
                for (int i = start; i < end; i++)
                {
                    if (!float.IsFinite(row[i])) throw new ArgumentException($"weight [{o}, {i}] is {row[i]}: only finite weights can be quantized");
                    max = Math.Max(max, Math.Abs(row[i]));
                }
                float scale = max / maxLevel;
                scales[(long)o * groups + g] = scale;
                for (int i = start; i < end; i++)
                {
                    int q = scale == 0 ? 0 : (int)Math.Clamp(MathF.Round(row[i] / scale, MidpointRounding.AwayFromZero), -maxLevel, maxLevel);
                    long at = (long)o * rowBytes;
                    if (type == QuantizationType.Int8) data[at + i] = (byte)(sbyte)q;
                    else data[at + i / 2] |= (byte)((q + 8) << (i % 2 * 4));
                }
            }
        }
        return new QuantizedWeight(type, outFeatures, inFeatures, groupSize, data, scales);
    }

    /// <summary>The integer value of weight [o, i].</summary>
    public int Level(int o, int i) => Type == QuantizationType.Int8
        ? (sbyte)Data[(long)o * RowBytes + i]
        : ((Data[(long)o * RowBytes + i / 2] >> (i % 2 * 4)) & 0xF) - 8;

    /// <summary>The float matrix the quantized values stand for (level × its group's scale), row-major [out, in].</summary>
    public float[] Dequantize()
    {
        var weight = new float[(long)OutFeatures * InFeatures];
        for (int o = 0; o < OutFeatures; o++)
            for (int i = 0; i < InFeatures; i++)
                weight[(long)o * InFeatures + i] = Level(o, i) * Scales[(long)o * GroupsPerRow + i / GroupSize];
        return weight;
    }

    /// <summary>Bytes a step reads: the values and the scales.</summary>
    public long Bytes => Data.LongLength + Scales.LongLength * sizeof(float);
}
