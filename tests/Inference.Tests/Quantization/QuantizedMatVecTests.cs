using Gpt2Orleans.Inference.Quantization;

namespace Gpt2Orleans.Inference.Tests.Quantization;

/// <summary>
/// Per-group int8 / int4 quantization and the mat-vec kernel over it, held to the scalar reference and to a float32
/// product with the dequantized weights, for shapes that are and are not multiples of the vector width and the group.
/// </summary>
public sealed class QuantizedMatVecTests
{
    private static float[] Random(int count, int seed, float scale = 1)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
    }

    /// <summary>x · Wᵀ in double over the dequantized weights: what the integer arithmetic must equal up to float rounding.</summary>
    private static double[] Dense(float[] weight, int outFeatures, int inFeatures, float[] x, int rows)
    {
        var y = new double[rows * outFeatures];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outFeatures; o++)
            {
                double sum = 0;
                for (int i = 0; i < inFeatures; i++) sum += (double)weight[o * inFeatures + i] * x[r * inFeatures + i];
                y[r * outFeatures + o] = sum;
            }
        return y;
    }

    public static TheoryData<QuantizationType, int, int, int, int> Shapes => new()
    {
        { QuantizationType.Int8, 3, 7, 4, 1 },      // nothing a multiple of 8
        { QuantizationType.Int8, 70, 100, 32, 3 },  // the last group short, 70 outputs: two chunks
        { QuantizationType.Int8, 64, 768, 64, 2 },  // GPT-2 small's width
        { QuantizationType.Int8, 5, 33, 8, 1 },     // one weight past the last full vector
        { QuantizationType.Int4, 3, 7, 4, 1 },
        { QuantizationType.Int4, 70, 100, 32, 3 },
        { QuantizationType.Int4, 64, 768, 64, 2 },
        { QuantizationType.Int4, 5, 33, 8, 1 },     // an odd row length: the last byte half full
        { QuantizationType.Int4, 9, 41, 16, 4 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void The_kernel_equals_the_reference_and_the_dequantized_product(QuantizationType type, int outFeatures, int inFeatures, int groupSize, int rows)
    {
        var weight = Random(outFeatures * inFeatures, 1, 0.2f);
        var x = Random(rows * inFeatures, 2);
        var q = QuantizedWeight.Quantize(weight, outFeatures, inFeatures, type, groupSize);
        var expected = Dense(q.Dequantize(), outFeatures, inFeatures, x, rows);
        var reference = QuantizedMatVec.Reference(q, x, rows);
        var kernel = QuantizedMatVec.Apply(q, x, rows);
        for (int k = 0; k < expected.Length; k++)
        {
            double tolerance = 1e-5 * Math.Sqrt(inFeatures) + 1e-6;
            Assert.True(Math.Abs(reference[k] - expected[k]) <= tolerance, $"reference [{k}] {reference[k]} vs {expected[k]}");
            Assert.True(Math.Abs(kernel[k] - expected[k]) <= tolerance, $"kernel [{k}] {kernel[k]} vs {expected[k]}");
        }
    }

    [Theory]
    [InlineData(QuantizationType.Int8, 127)]
    [InlineData(QuantizationType.Int4, 7)]
    public void Each_weight_rounds_to_the_nearest_level_of_its_groups_scale(QuantizationType type, int maxLevel)
    {
        const int outFeatures = 4, inFeatures = 50, groupSize = 16;
        var weight = Random(outFeatures * inFeatures, 3);
        weight[5] = 0; // a zero stays zero
        var q = QuantizedWeight.Quantize(weight, outFeatures, inFeatures, type, groupSize);
        Assert.Equal(outFeatures * 4, q.Scales.Length); // ⌈50 ÷ 16⌉ groups a row
        var restored = q.Dequantize();
        for (int o = 0; o < outFeatures; o++)
            for (int i = 0; i < inFeatures; i++)
            {
                float scale = q.Scales[o * q.GroupsPerRow + i / groupSize];
                float w = weight[o * inFeatures + i];
                Assert.InRange(q.Level(o, i), -maxLevel, maxLevel);
                Assert.True(Math.Abs(restored[o * inFeatures + i] - w) <= scale / 2 + 1e-7, $"[{o}, {i}] {w} → {restored[o * inFeatures + i]} (scale {scale})");
            }
        Assert.Equal(0, restored[5]);
        // Each group's largest weight is exactly representable: it is ±maxLevel × scale.
        int argMax = Enumerable.Range(0, groupSize).MaxBy(i => Math.Abs(weight[i]));
        Assert.Equal(Math.Abs(weight[argMax]), Math.Abs(restored[argMax]), 6);
        Assert.Equal(maxLevel, Math.Abs(q.Level(0, argMax)));
    }

    [Fact]
    public void Bad_shapes_and_weights_are_refused()
    {
        Assert.Throws<ArgumentException>(() => QuantizedWeight.Quantize(new float[6], 2, 4, QuantizationType.Int8, 4));
        Assert.Throws<ArgumentException>(() => QuantizedWeight.Quantize(new float[8], 2, 4, QuantizationType.Int8, 0));
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => QuantizedWeight.Quantize([1, float.NaN, 0, 0], 1, 4, QuantizationType.Int4, 4)).Message);
        Assert.Throws<ArgumentException>(() => new QuantizedWeight(QuantizationType.Int4, 2, 5, 4, new byte[5], new float[4])); // 2 rows of 3 bytes
        var q = QuantizedWeight.Quantize(new float[8], 2, 4, QuantizationType.Int8, 4);
        Assert.Throws<ArgumentException>(() => QuantizedMatVec.Apply(q, new float[5], 1));
    }
}
