using System.Buffers;
using System.Runtime.Intrinsics;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// The input rows of one quantized product, quantized to int8 per block of 32 inputs (ggml's q8_0): each block's
/// scale is its largest |x| ÷ 127 and each value rounds to the nearest level (half to even). Why: the weights' integer
/// levels then meet the inputs' in integer dot products (<c>vpmaddubsw</c>: 32 products per instruction, against 8 per
/// float FMA), which is what lets a step of several rows stay bandwidth-bound. The error this adds is at most half a
/// level per input (|x| ≤ 127 levels), far below int8 weights' own. Rented arrays: dispose to return them.
/// </summary>
internal sealed class QuantizedActivations : IDisposable
{
    private const int Block = QuantizedWeight.BlockSize;

    public int Rows { get; }
    public int Blocks { get; }
    /// <summary>[rows, blocks × 32] levels, padding inputs 0.</summary>
    public sbyte[] Levels { get; }
    /// <summary>[rows, blocks] scales.</summary>
    public float[] Scales { get; }
    /// <summary>[rows, blocks] each block's level sum times its scale: what int4's stored offset of 8 adds to a dot product, ÷ 8.</summary>
    public float[] ScaledSums { get; }

    private QuantizedActivations(int rows, int blocks)
    {
        Rows = rows;
        Blocks = blocks;
        Levels = ArrayPool<sbyte>.Shared.Rent(rows * blocks * Block);
        Scales = ArrayPool<float>.Shared.Rent(rows * blocks);
        ScaledSums = ArrayPool<float>.Shared.Rent(rows * blocks);
    }

    /// <summary>Quantizes <paramref name="rows"/> rows of <paramref name="inFeatures"/> values.</summary>
    public static unsafe QuantizedActivations Quantize(float* x, int rows, int inFeatures)
    {
        int blocks = (inFeatures + Block - 1) / Block;
        var result = new QuantizedActivations(rows, blocks);
        var padded = new float[Block];
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                int start = b * Block, count = Math.Min(Block, inFeatures - start);
                ReadOnlySpan<float> values = new(x + (long)r * inFeatures + start, count);
                if (count < Block) { Array.Clear(padded); values.CopyTo(padded); values = padded; }
                result.QuantizeBlock(values, r * blocks + b);
            }
        return result;
    }

    private void QuantizeBlock(ReadOnlySpan<float> values, int block)
    {
        var max = Vector256<float>.Zero;
        for (int j = 0; j < Block; j += Vector256<float>.Count) max = Vector256.Max(max, Vector256.Abs(Vector256.Create(values.Slice(j, Vector256<float>.Count))));
        float largest = 0;
        for (int k = 0; k < Vector256<float>.Count; k++) largest = Math.Max(largest, max[k]); // Math.Max keeps a NaN
        // A NaN or infinite input makes its block's scale NaN, so the outputs it reaches are NaN, as a float product's are.
        float scale = float.IsFinite(largest) ? largest / 127 : float.NaN, inverse = scale is 0 or float.NaN ? 0 : 1 / scale;
        var levels = Levels.AsSpan(block * Block, Block);
        int sum = 0;
        for (int j = 0; j < Block; j++)
        {
            int level = (int)Math.Clamp(MathF.Round(values[j] * inverse), -127, 127);
            levels[j] = (sbyte)level;
            sum += level;
        }
        Scales[block] = scale;
        ScaledSums[block] = scale * sum;
    }

    public void Dispose()
    {
        ArrayPool<sbyte>.Shared.Return(Levels);
        ArrayPool<float>.Shared.Return(Scales);
        ArrayPool<float>.Shared.Return(ScaledSums);
    }
}
