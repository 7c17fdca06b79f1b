using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    /// <summary>[rows, blocks] each block's sum of levels: what a weight format stored with an offset (int4's + 8) adds to a block's dot product, ÷ the offset.</summary>
    public int[] LevelSums { get; }

    private QuantizedActivations(int rows, int blocks)
    {
        Rows = rows;
        Blocks = blocks;
        Levels = ArrayPool<sbyte>.Shared.Rent(rows * blocks * Block);
        Scales = ArrayPool<float>.Shared.Rent(rows * blocks);
        LevelSums = ArrayPool<int>.Shared.Rent(rows * blocks);
    }

    // Optimized at once, as every vector routine a step runs per block or row is: tiered compilation first runs a method
    // as tier-0 code, where vector code is many times slower, and may put off optimizing it for seconds while the process
    // compiles other code. Measured: with these two as tier-0 code, the first int4 decode of a `gpt2o bench` process ran
    // at 127–165 tok/s; optimized at once, 204, against 239–259 for the same decode later in the process.
    /// <summary>Quantizes <paramref name="rows"/> rows of <paramref name="inFeatures"/> values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe QuantizedActivations Quantize(float* x, int rows, int inFeatures)
    {
        int blocks = (inFeatures + Block - 1) / Block;
        var result = new QuantizedActivations(rows, blocks);
        float* padded = stackalloc float[Block];
        fixed (sbyte* levels = result.Levels)
        fixed (float* scales = result.Scales)
        fixed (int* sums = result.LevelSums)
            for (int r = 0; r < rows; r++)
                for (int b = 0; b < blocks; b++)
                {
                    int start = b * Block, count = Math.Min(Block, inFeatures - start), at = r * blocks + b;
                    float* values = x + (long)r * inFeatures + start;
                    if (count < Block)
                    {
                        new Span<float>(padded, Block).Clear();
                        new ReadOnlySpan<float>(values, count).CopyTo(new Span<float>(padded, Block));
                        values = padded;
                    }
                    (scales[at], sums[at]) = QuantizeBlock(values, levels + (long)at * Block);
                }
        return result;
    }

    /// <summary>
    /// One block's scale (largest |x| ÷ 127) and levels (x ÷ scale, rounded half to even), returning the scale and
    /// Σ levels. Vectorised: one scalar loop of 32 here cost 80 µs per 3,072 inputs, a tenth of a decode step.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    private static unsafe (float Scale, int LevelSum) QuantizeBlock(float* values, sbyte* levels)
    {
        var v0 = Vector256.Load(values); var v1 = Vector256.Load(values + 8); var v2 = Vector256.Load(values + 16); var v3 = Vector256.Load(values + 24);
        var max = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
        float largest = 0;
        for (int k = 0; k < Vector256<float>.Count; k++) largest = Math.Max(largest, max[k]); // Math.Max keeps a NaN
        // A NaN or infinite input makes its block's scale NaN, so the outputs it reaches are NaN, as a float product's are.
        float scale = float.IsFinite(largest) ? largest / 127 : float.NaN, inverse = scale is 0 or float.NaN ? 0 : 1 / scale;
        if (!Avx2.IsSupported)
        {
            int total = 0;
            for (int j = 0; j < Block; j++) total += levels[j] = (sbyte)Math.Clamp(MathF.Round(values[j] * inverse), -127, 127);
            return (scale, total);
        }
        var i = Vector256.Create(inverse);
        // Converting rounds half to even (MXCSR's default), as MathF.Round does; |x| × inverse ≤ 127.
        var q0 = Avx.ConvertToVector256Int32(v0 * i); var q1 = Avx.ConvertToVector256Int32(v1 * i);
        var q2 = Avx.ConvertToVector256Int32(v2 * i); var q3 = Avx.ConvertToVector256Int32(v3 * i);
        int sum = Vector256.Sum(q0 + q1 + q2 + q3);
        // Packing works within 128-bit lanes: the permute puts the 32 levels back in input order.
        var packed = Avx2.PackSignedSaturate(Avx2.PackSignedSaturate(q0, q1), Avx2.PackSignedSaturate(q2, q3));
        Avx2.PermuteVar8x32(packed.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte().Store(levels);
        return (scale, sum);
    }

    public void Dispose()
    {
        ArrayPool<sbyte>.Shared.Return(Levels);
        ArrayPool<float>.Shared.Return(Scales);
        ArrayPool<int>.Shared.Return(LevelSums);
    }
}
