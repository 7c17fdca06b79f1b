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
        const int chunk = 64;
        Parallel.For(0, (w.OutFeatures + chunk - 1) / chunk, c =>
        {
            fixed (byte* data = w.Data)
            fixed (float* scales = w.Scales, xs = input, ys = y)
                for (int o = c * chunk; o < Math.Min(w.OutFeatures, (c + 1) * chunk); o++)
                    for (int r = 0; r < rows; r++)
                        ys[r * w.OutFeatures + o] = Row(w, data + (long)o * w.RowBytes, scales + (long)o * w.GroupsPerRow, xs + (long)r * w.InFeatures);
        });
        return y;
    }

    private static float Row(QuantizedWeight w, byte* row, float* scales, float* x)
    {
        var shifts = Vector256.Create(0u, 4, 8, 12, 16, 20, 24, 28);
        var low4 = Vector256.Create(0xFu);
        var eight = Vector256.Create(8);
        float total = 0;
        for (int g = 0; g < w.GroupsPerRow; g++)
        {
            int start = g * w.GroupSize, end = Math.Min(w.InFeatures, start + w.GroupSize), i = start;
            var acc = Vector256<float>.Zero;
            if (w.Type == QuantizationType.Int8)
                for (; i + 8 <= end; i += 8)
                    acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)row + i)), Avx.LoadVector256(x + i), acc);
            else
                for (; i + 8 <= end; i += 8) // i is even: a group starts at a multiple of 8
                {
                    var nibbles = Avx2.And(Avx2.ShiftRightLogicalVariable(Vector256.Create(*(uint*)(row + i / 2)), shifts), low4);
                    var levels = Avx2.Subtract(nibbles.AsInt32(), eight);
                    acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(levels), Avx.LoadVector256(x + i), acc);
                }
            float sum = Vector256.Sum(acc);
            for (; i < end; i++)
                sum += (w.Type == QuantizationType.Int8 ? (sbyte)row[i] : ((row[i / 2] >> (i % 2 * 4)) & 0xF) - 8) * x[i];
            total += scales[g] * sum;
        }
        return total;
    }

    private static void Check(QuantizedWeight w, ReadOnlySpan<float> x, int rows)
    {
        if (rows < 1 || x.Length != (long)rows * w.InFeatures) throw new ArgumentException($"x holds {x.Length} values, not {rows} rows of {w.InFeatures}");
    }
}
