using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// bitsandbytes' NormalFloat4 (QLoRA's <c>nf4</c>): 16 code values at the quantiles of a normal distribution scaled to
/// [−1, 1], with an exact 0, so that normally distributed weights use every code about equally often (int4's evenly
/// spaced levels waste codes on the tails). A weight is stored as the 4-bit index of the code value nearest to
/// w ÷ its group's largest |w|.
/// <para>We hold the code book at int8 resolution: code k stands for the level round(127 · NF4[k]) times the group's
/// scale (largest |w| ÷ 127), so a dequantized weight lies within 0.5 ÷ 127 of the group's largest |w| of
/// bitsandbytes' value (a tenth of the smallest gap between two codes). Why: every weight format is then integer levels
/// times a scale, and nf4 takes the same exact integer dot products as int8 and int4 (<see cref="QuantizedMatVec"/>),
/// a byte shuffle (<c>vpshufb</c>) turning a block's 32 indices into their levels.</para>
/// </summary>
public static class NormalFloat4
{
    /// <summary>bitsandbytes' code book (<c>create_normal_map</c>), index order: −1 first, 0 at index 7, 1 last.</summary>
    public static ReadOnlySpan<float> Values =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>The index of code value 0 (what padding inputs hold).</summary>
    public const int ZeroIndex = 7;

    /// <summary>The level each index stands for: round(127 · <see cref="Values"/>[k]), rising with k.</summary>
    public static ReadOnlySpan<sbyte> Levels => [-127, -88, -67, -50, -36, -23, -12, 0, 10, 20, 31, 43, 56, 71, 92, 127];

    /// <summary>The 16 levels as a byte-shuffle table (each 128-bit lane looks up its own bytes).</summary>
    internal static readonly Vector128<sbyte> LevelTable = Vector128.Create(Levels);

    /// <summary>
    /// The index of the level nearest to <paramref name="level"/> (a weight in units of its group's scale, within
    /// [−127, 127]); a value halfway between two levels takes the one farther from zero, as the integer formats' rounding does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestIndex(float level)
    {
        // The levels rise, so the index is the number of midpoints between neighbours that the value lies beyond: past a
        // negative midpoint when above it, past a positive one when at or above it (ties away from zero). Two vector
        // compares and two bit counts, where a walk up the 15 midpoints made quantizing GPT-2 small at load 1 s slower.
        var value = Vector256.Create(level);
        uint below = Vector256.GreaterThan(value, NegativeMidpoints).ExtractMostSignificantBits();
        uint above = Vector256.GreaterThanOrEqual(value, PositiveMidpoints).ExtractMostSignificantBits();
        return System.Numerics.BitOperations.PopCount(below) + System.Numerics.BitOperations.PopCount(above);
    }

    /// <summary>The midpoints between levels 0–7 (all negative), and +∞ in the eighth lane, which nothing lies beyond.</summary>
    private static readonly Vector256<float> NegativeMidpoints = Midpoints(0, 7);
    /// <summary>The midpoints between levels 7–15 (all positive).</summary>
    private static readonly Vector256<float> PositiveMidpoints = Midpoints(7, 8);

    private static Vector256<float> Midpoints(int first, int count)
    {
        var midpoints = new float[8];
        Array.Fill(midpoints, float.PositiveInfinity);
        for (int k = 0; k < count; k++) midpoints[k] = (Levels[first + k] + Levels[first + k + 1]) / 2f;
        return Vector256.Create(midpoints);
    }
}
