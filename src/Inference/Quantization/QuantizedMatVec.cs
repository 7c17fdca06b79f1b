using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// y = x · Wᵀ for a few rows of x against a <see cref="QuantizedWeight"/> [out, in]: each group's integer dot product
/// in float32, times the group's scale. Why our own kernel: a decode step reads every weight once, so fewer bytes per
/// weight is speed, and libtorch has no CPU kernel over int8/int4 groups. <see cref="Reference"/> is the scalar
/// definition the tests hold <see cref="Apply"/> (AVX2 + FMA: eight weights widened to float32 per instruction, int4
/// unpacked with variable shifts) to; group sizes that are not a multiple of 8 take the reference path.
/// </summary>
public static unsafe class QuantizedMatVec
{
    public static bool Supported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>x: [rows, in] row-major; returns [rows, out].</summary>
    public static float[] Reference(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        Check(w, x, rows);
        var y = new float[rows * w.OutFeatures];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < w.OutFeatures; o++)
            {
                float total = 0;
                for (int g = 0; g < w.GroupsPerRow; g++)
                {
                    int start = g * w.GroupSize, end = Math.Min(w.InFeatures, start + w.GroupSize);
                    float sum = 0;
                    for (int i = start; i < end; i++) sum += w.Level(o, i) * x[r * w.InFeatures + i];
                    total += w.Scales[o * w.GroupsPerRow + g] * sum;
                }
                y[r * w.OutFeatures + o] = total;
            }
        return y;
    }

    /// <summary>The vector kernel where the CPU and the group size allow it (the reference otherwise); output rows split across the cores.</summary>
    public static float[] Apply(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        Check(w, x, rows);
        if (!Supported || w.GroupSize % 8 != 0) return Reference(w, x, rows);
        var y = new float[rows * w.OutFeatures];
        var input = x.ToArray();
        var (type, inFeatures, outFeatures, groupSize, groups, rowBytes) = (w.Type, w.InFeatures, w.OutFeatures, w.GroupSize, w.GroupsPerRow, w.RowBytes);
        // One contiguous share of the outputs per core: a share streams its weight rows once for all input rows.
        int shares = Math.Min(Environment.ProcessorCount, (outFeatures + 255) / 256);
        Parallel.For(0, shares, share =>
        {
            int first = (int)((long)outFeatures * share / shares), last = (int)((long)outFeatures * (share + 1) / shares);
            fixed (byte* data = w.Data)
            fixed (float* scales = w.Scales, xs = input, ys = y)
                for (int o = first; o < last; o++)
                    for (int r = 0; r < rows; r++)
                        ys[r * outFeatures + o] = Row(type, inFeatures, groupSize, groups, data + (long)o * rowBytes, scales + (long)o * groups, xs + (long)r * inFeatures);
        });
        return y;
    }

    /// <summary>
    /// One output: each group's products accumulate in a vector, which is scaled into the row's vector accumulator
    /// (one horizontal sum per row, not per group); a group's tail past its last full vector is added in scalar.
    /// </summary>
    private static float Row(QuantizationType type, int inFeatures, int groupSize, int groups, byte* row, float* scales, float* x)
    {
        var shifts = Vector256.Create(0u, 4, 8, 12, 16, 20, 24, 28);
        var low4 = Vector256.Create(0xFu);
        var eight = Vector256.Create(8);
        var total = Vector256<float>.Zero;
        float tails = 0;
        bool int8 = type == QuantizationType.Int8;
        for (int g = 0; g < groups; g++)
        {
            int start = g * groupSize, end = Math.Min(inFeatures, start + groupSize), i = start;
            // Two independent chains: one FMA chain waits out its latency on every vector.
            Vector256<float> acc = Vector256<float>.Zero, odd = Vector256<float>.Zero;
            if (int8)
            {
                for (; i + 16 <= end; i += 16)
                {
                    acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)row + i)), Avx.LoadVector256(x + i), acc);
                    odd = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)row + i + 8)), Avx.LoadVector256(x + i + 8), odd);
                }
                for (; i + 8 <= end; i += 8)
                    acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)row + i)), Avx.LoadVector256(x + i), acc);
            }
            else
            {
                for (; i + 16 <= end; i += 16) // i is even: a group starts at a multiple of 8
                {
                    var nibbles = Avx2.And(Avx2.ShiftRightLogicalVariable(Vector256.Create(*(uint*)(row + i / 2)), shifts), low4);
                    acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.Subtract(nibbles.AsInt32(), eight)), Avx.LoadVector256(x + i), acc);
                    var high = Avx2.And(Avx2.ShiftRightLogicalVariable(Vector256.Create(*(uint*)(row + i / 2 + 4)), shifts), low4);
                    odd = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.Subtract(high.AsInt32(), eight)), Avx.LoadVector256(x + i + 8), odd);
                }
                for (; i + 8 <= end; i += 8)
                {
                    var nibbles = Avx2.And(Avx2.ShiftRightLogicalVariable(Vector256.Create(*(uint*)(row + i / 2)), shifts), low4);
                    acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.Subtract(nibbles.AsInt32(), eight)), Avx.LoadVector256(x + i), acc);
                }
            }
            float scale = scales[g];
            total = Fma.MultiplyAdd(acc + odd, Vector256.Create(scale), total);
            if (i < end)
            {
                float sum = 0;
                for (; i < end; i++) sum += (int8 ? (sbyte)row[i] : ((row[i / 2] >> (i % 2 * 4)) & 0xF) - 8) * x[i];
                tails += scale * sum;
            }
        }
        return Vector256.Sum(total) + tails;
    }

    private static void Check(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        if (rows < 1 || x.Length != (long)rows * w.InFeatures) throw new ArgumentException($"x holds {x.Length} values, not {rows} rows of {w.InFeatures}");
    }
}
