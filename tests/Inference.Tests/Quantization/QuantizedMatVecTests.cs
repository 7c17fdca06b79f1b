using Gpt2Orleans.Inference.Quantization;

namespace Gpt2Orleans.Inference.Tests.Quantization;

/// <summary>
/// Per-group int8 / int4 / nf4 quantization and the mat-vec kernel over it, held to the scalar reference and to a float32
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

    private static readonly (int Out, int In, int Group, int Rows)[] ShapeList =
    [
        (3, 7, 32, 1),     // one short block: nothing a multiple of the vector width
        (70, 100, 32, 3),  // the last block padded, 70 outputs
        (300, 768, 64, 2), // GPT-2 small's width, two cores' shares
        (5, 33, 64, 1),    // one input past a block, inside one short group
        (9, 160, 64, 5),   // five blocks, a short last group; five rows
        (300, 768, 32, 8), // two cores' shares, a short last tile
        (70, 100, 32, 6),  // six rows, but 100 inputs: the integer kernel still
        (303, 96, 64, 2),  // two cores' shares, three rows past the last tile of four
        (9, 160, 64, 33),  // 33 rows: dequantized float tiles for every kernel
        (260, 96, 32, 32), // float tiles on two cores' shares (the 512-bit int4 kernel's threshold)
    ];

    /// <summary>Every shape for each format and each integer kernel, by name (a kernel this CPU lacks reports skipped).</summary>
    public static TheoryData<QuantizationType, string, int, int, int, int> Shapes
    {
        get
        {
            var data = new TheoryData<QuantizationType, string, int, int, int, int>();
            foreach (var type in Enum.GetValues<QuantizationType>())
                foreach (var kernel in Enum.GetValues<IntegerKernel>())
                    if (type == QuantizationType.Int4 || kernel != IntegerKernel.Avx512) // only int4 has a 512-bit kernel
                        foreach (var (o, i, g, r) in ShapeList) data.Add(type, kernel.ToString(), o, i, g, r);
            return data;
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Shapes))]
    public void The_kernel_equals_the_reference_and_the_dequantized_product(QuantizationType type, string kernelName, int outFeatures, int inFeatures, int groupSize, int rows)
    {
        var kernel = Enum.Parse<IntegerKernel>(kernelName);
        Skip.IfNot(QuantizedMatVec.Supports(kernel, type), $"this CPU has no {kernel} kernel for {type}");
        var weight = Random(outFeatures * inFeatures, 1, 0.2f);
        var x = Random(rows * inFeatures, 2);
        x[0] = 3; // blocks with different scales
        var q = QuantizedWeight.Quantize(weight, outFeatures, inFeatures, type, groupSize);
        var dequantized = q.Dequantize();
        var expected = Dense(dequantized, outFeatures, inFeatures, x, rows);
        var reference = QuantizedMatVec.Reference(q, x, rows);
        var product = QuantizedMatVec.Apply(q, x, rows, kernel);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outFeatures; o++)
            {
                // The inputs are rounded to int8 per block of 32: each moves by at most half its block's scale.
                double magnitude = 0, inputError = 0;
                for (int i = 0; i < inFeatures; i++)
                {
                    int blockStart = i / 32 * 32;
                    float blockMax = x.Skip(r * inFeatures + blockStart).Take(Math.Min(32, inFeatures - blockStart)).Max(Math.Abs);
                    double w = Math.Abs(dequantized[o * inFeatures + i]);
                    magnitude += w * Math.Abs(x[r * inFeatures + i]);
                    inputError += w * blockMax / 127 / 2;
                }
                int k = r * outFeatures + o;
                double rounding = 1e-5 * magnitude + 1e-6;
                // From FloatTileRowsFor(kernel) rows (inputs in a multiple of 16) the kernel multiplies dequantized float32 tiles:
                // the dense product itself. Below, it is the integer scheme the reference defines.
                if (rows >= QuantizedMatVec.FloatTileRowsFor(kernel) && inFeatures % 16 == 0)
                    Assert.True(Math.Abs(product[k] - expected[k]) <= rounding, $"float tiles [{r}, {o}] {product[k]} vs {expected[k]}");
                else Assert.True(Math.Abs(product[k] - reference[k]) <= rounding, $"{kernel} [{r}, {o}] {product[k]} vs reference {reference[k]}");
                Assert.True(Math.Abs(reference[k] - expected[k]) <= inputError + rounding, $"reference [{r}, {o}] {reference[k]} vs {expected[k]} (bound {inputError})");
            }
    }

    [Theory]
    [InlineData(QuantizationType.Int8)]
    [InlineData(QuantizationType.Int4)]
    [InlineData(QuantizationType.Nf4)]
    public void A_nan_input_makes_the_outputs_it_reaches_nan(QuantizationType type)
    {
        var q = QuantizedWeight.Quantize(Random(4 * 64, 1), 4, 64, type, 32);
        var x = Random(2 * 64, 2);
        x[64 + 40] = float.NaN; // the second row's second block
        var y = QuantizedMatVec.Apply(q, x, 2);
        Assert.All(y.Take(4), v => Assert.True(float.IsFinite(v)));
        Assert.All(y.Skip(4), v => Assert.True(float.IsNaN(v)));
    }

    [Theory]
    [InlineData(QuantizationType.Int8, 127)]
    [InlineData(QuantizationType.Int4, 7)]
    public void Each_weight_rounds_to_the_nearest_level_of_its_groups_scale(QuantizationType type, int maxLevel)
    {
        const int outFeatures = 6, inFeatures = 150, groupSize = 64; // a tile of four rows, two rows past it
        var weight = Random(outFeatures * inFeatures, 3);
        weight[5] = 0; // a zero stays zero
        var q = QuantizedWeight.Quantize(weight, outFeatures, inFeatures, type, groupSize);
        Assert.Equal(outFeatures * 3, q.Scales.Length); // ⌈150 ÷ 64⌉ groups a row
        var restored = q.Dequantize();
        for (int o = 0; o < outFeatures; o++)
            for (int i = 0; i < inFeatures; i++)
            {
                float scale = q.Scale(o, i / groupSize);
                float w = weight[o * inFeatures + i];
                Assert.InRange(q.Level(o, i), -maxLevel, maxLevel);
                Assert.Equal(q.Level(o, i) * scale, restored[o * inFeatures + i]); // the vector dequantizer is the definition's
                Assert.True(Math.Abs(restored[o * inFeatures + i] - w) <= scale / 2 + 1e-7, $"[{o}, {i}] {w} → {restored[o * inFeatures + i]} (scale {scale})");
            }
        Assert.Equal(0, restored[5]);
        // Each group's largest weight is exactly representable: it is ±maxLevel × scale.
        int argMax = Enumerable.Range(0, groupSize).MaxBy(i => Math.Abs(weight[i]));
        Assert.Equal(Math.Abs(weight[argMax]), Math.Abs(restored[argMax]), 6);
        Assert.Equal(maxLevel, Math.Abs(q.Level(0, argMax)));
    }

    [Fact]
    public void Nf4_levels_are_bitsandbytes_code_book_at_int8_resolution()
    {
        Assert.Equal(16, NormalFloat4.Values.Length);
        for (int k = 0; k < 16; k++)
            Assert.Equal((int)MathF.Round(127 * NormalFloat4.Values[k], MidpointRounding.AwayFromZero), NormalFloat4.Levels[k]);
        Assert.Equal(0, NormalFloat4.Levels[NormalFloat4.ZeroIndex]);
        // Every level is its own nearest; a value between two levels goes to the nearer, a midpoint away from zero.
        for (int k = 0; k < 16; k++) Assert.Equal(k, NormalFloat4.NearestIndex(NormalFloat4.Levels[k]));
        Assert.Equal(8, NormalFloat4.NearestIndex(5f));   // between 0 and 10
        Assert.Equal(7, NormalFloat4.NearestIndex(4.9f));
        Assert.Equal(5, NormalFloat4.NearestIndex(-17.5f)); // between −23 and −12
        Assert.Equal(6, NormalFloat4.NearestIndex(-17.4f));
        Assert.Equal(0, NormalFloat4.NearestIndex(-127f));
        Assert.Equal(15, NormalFloat4.NearestIndex(127f));
        // Every quarter level from −127 to 127 (each midpoint among them): the nearest by brute force, ties away from zero.
        for (float v = -127; v <= 127; v += 0.25f)
        {
            int nearest = 0;
            for (int k = 1; k < 16; k++)
            {
                float d = Math.Abs(NormalFloat4.Levels[k] - v), best = Math.Abs(NormalFloat4.Levels[nearest] - v);
                if (d < best || (d == best && Math.Abs(NormalFloat4.Levels[k]) > Math.Abs(NormalFloat4.Levels[nearest]))) nearest = k;
            }
            Assert.True(nearest == NormalFloat4.NearestIndex(v), $"{v}: index {NormalFloat4.NearestIndex(v)}, nearest {nearest}");
        }
    }

    [Fact]
    public void Nf4_rounds_each_weight_to_the_nearest_code_value_of_its_groups_largest_weight()
    {
        const int outFeatures = 6, inFeatures = 150, groupSize = 64; // a tile of four rows, two rows past it
        var weight = Random(outFeatures * inFeatures, 5);
        weight[9] = 0;
        var q = QuantizedWeight.Quantize(weight, outFeatures, inFeatures, QuantizationType.Nf4, groupSize);
        var restored = q.Dequantize();
        for (int o = 0; o < outFeatures; o++)
            for (int i = 0; i < inFeatures; i++)
            {
                int start = i / groupSize * groupSize;
                float absMax = weight.Skip(o * inFeatures + start).Take(Math.Min(groupSize, inFeatures - start)).Max(Math.Abs);
                float w = weight[o * inFeatures + i], got = restored[o * inFeatures + i];
                Assert.Equal(absMax / 127, q.Scale(o, i / groupSize));
                Assert.Equal(q.Level(o, i) * q.Scale(o, i / groupSize), got); // the vector dequantizer is the definition's
                Assert.Contains((sbyte)q.Level(o, i), NormalFloat4.Levels.ToArray());
                // bitsandbytes' value for the code chosen is within half an int8 level of ours…
                int code = NormalFloat4.Levels.IndexOf((sbyte)q.Level(o, i));
                Assert.True(Math.Abs(got - NormalFloat4.Values[code] * absMax) <= absMax / 127 / 2 + 1e-7, $"[{o}, {i}] {got} vs bitsandbytes' {NormalFloat4.Values[code] * absMax}");
                // …and no other code is nearer to the weight.
                foreach (var level in NormalFloat4.Levels)
                    Assert.True(Math.Abs(got - w) <= Math.Abs(level * absMax / 127 - w) + 1e-6, $"[{o}, {i}] {w} → {got}, but {level * absMax / 127} is nearer");
            }
        Assert.Equal(0, restored[9]);
        Assert.Equal(NormalFloat4.ZeroIndex * 0x11, QuantizedWeight.Quantize(new float[32], 1, 32, QuantizationType.Nf4, 32).Data[0]); // zeros store index 7
    }

    [Fact]
    public void Bad_shapes_and_weights_are_refused()
    {
        Assert.Throws<ArgumentException>(() => QuantizedWeight.Quantize(new float[6], 2, 4, QuantizationType.Int8, 32));
        Assert.Contains("multiple of 32", Assert.Throws<ArgumentException>(() => QuantizedWeight.Quantize(new float[8], 2, 4, QuantizationType.Int8, 16)).Message);
        Assert.Throws<ArgumentException>(() => QuantizedWeight.Quantize(new float[8], 2, 4, QuantizationType.Int8, 0));
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => QuantizedWeight.Quantize([1, float.NaN, 0, 0], 1, 4, QuantizationType.Int4, 32)).Message);
        Assert.Throws<ArgumentException>(() => new QuantizedWeight(QuantizationType.Int4, 2, 5, 32, new byte[10], new float[2])); // 2 rows of one 16-byte block
        Assert.Throws<ArgumentException>(() => new QuantizedWeight(QuantizationType.Int8, 1, 5, 32, new byte[32], [float.NaN]));
        var q = QuantizedWeight.Quantize(new float[8], 2, 4, QuantizationType.Int8, 32);
        Assert.Throws<ArgumentException>(() => QuantizedMatVec.Apply(q, new float[5], 1));
    }

    [Fact]
    public void Int4_keeps_a_blocks_inputs_j_and_j_plus_16_in_one_byte()
    {
        var weight = new float[32];
        weight[3] = 1;     // level 7 → stored 15, low nibble of byte 3
        weight[19] = -1;   // level −7 → stored 1, high nibble of byte 3
        var q = QuantizedWeight.Quantize(weight, 1, 32, QuantizationType.Int4, 32);
        Assert.Equal(16, q.Data.Length);
        Assert.Equal(0x1F, q.Data[3]);
        Assert.Equal(0x88, q.Data[4]); // zeros are level 0, stored 8
    }

    [Theory]
    [InlineData(QuantizationType.Int8)]
    [InlineData(QuantizationType.Int4)]
    [InlineData(QuantizationType.Nf4)]
    public void Rows_are_kept_in_tiles_of_four_and_checkpoints_see_them_row_major(QuantizationType type)
    {
        const int outFeatures = 6, inFeatures = 70, groupSize = 32; // one tile, two rows past it; three blocks a row
        var q = QuantizedWeight.Quantize(Random(outFeatures * inFeatures, 4), outFeatures, inFeatures, type, groupSize);
        int block = q.BlockBytes, rowBytes = q.RowBytes;
        // In a tile, a block of each of the four rows, then the next block: one stream for the kernel's pass.
        Assert.Equal(block, q.BlockOffset(1, 0));
        Assert.Equal(4 * block, q.BlockOffset(0, 1));
        Assert.Equal(4 * block + 3 * block, q.BlockOffset(3, 1));
        Assert.Equal(4 * rowBytes, q.BlockOffset(4, 0)); // past the tile, row by row
        Assert.Equal(5 * rowBytes + 2 * block, q.BlockOffset(5, 2));
        Assert.Equal(2, q.ScaleIndex(2, 0));
        Assert.Equal(4 + 1, q.ScaleIndex(1, 1));
        Assert.Equal(5 * q.GroupsPerRow + 2, q.ScaleIndex(5, 2));

        var levels = new byte[q.Data.Length];
        var scales = new float[q.Scales.Length];
        q.CopyRowMajorTo(levels, scales);
        for (int o = 0; o < outFeatures; o++)
        {
            for (int i = 0; i < inFeatures; i++)
            {
                int j = i % 32, at = o * rowBytes + i / 32 * block + (type == QuantizationType.Int8 ? j : j % 16);
                int code = j >= 16 ? levels[at] >> 4 : levels[at] & 0xF;
                int stored = type switch { QuantizationType.Int8 => (sbyte)levels[at], QuantizationType.Int4 => code - 8, _ => NormalFloat4.Levels[code] };
                Assert.Equal(q.Level(o, i), stored);
            }
            for (int g = 0; g < q.GroupsPerRow; g++) Assert.Equal(q.Scale(o, g), scales[o * q.GroupsPerRow + g]);
        }
        var reread = new QuantizedWeight(type, outFeatures, inFeatures, groupSize, levels, scales);
        Assert.Equal(q.Data, reread.Data);
        Assert.Equal(q.Scales, reread.Scales);
    }
}
