namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// A set of Unicode scalar values as sorted, disjoint, non-adjacent ranges: what one position of a regex or of a
/// JSON string may hold. Surrogates (U+D800–U+DFFF) are never members: they cannot be encoded as UTF-8.
/// </summary>
internal sealed class CharSet
{
    public const int MaxScalar = 0x10FFFF;
    private const int SurrogateLow = 0xD800, SurrogateHigh = 0xDFFF;

    public IReadOnlyList<(int Lo, int Hi)> Ranges { get; }

    private CharSet(List<(int Lo, int Hi)> ranges) => Ranges = ranges;

    public static CharSet Empty { get; } = new([]);
    public static CharSet Any { get; } = Range(0, MaxScalar);
    public static CharSet Digit { get; } = Range('0', '9');
    public static CharSet Word { get; } = Of(('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_'));
    public static CharSet Space { get; } = Of(('\t', '\r'), (' ', ' '), (0xA0, 0xA0), (0x2028, 0x2029), (0xFEFF, 0xFEFF));
    /// <summary>ECMAScript's <c>.</c>: anything but a line terminator.</summary>
    public static CharSet Dot { get; } = Of(('\n', '\n'), ('\r', '\r'), (0x2028, 0x2029)).Complement();

    public bool IsEmpty => Ranges.Count == 0;

    public static CharSet Single(int c) => Range(c, c);
    public static CharSet Range(int lo, int hi) => Of((lo, hi));

    public static CharSet Of(params (int Lo, int Hi)[] ranges) => Normalize(ranges);

    public CharSet Union(CharSet other) => Normalize(Ranges.Concat(other.Ranges));

    public CharSet Complement()
    {
        var result = new List<(int, int)>();
        int next = 0;
        foreach (var (lo, hi) in Ranges)
        {
            if (lo > next) result.Add((next, lo - 1));
            next = hi + 1;
        }
        if (next <= MaxScalar) result.Add((next, MaxScalar));
        return Normalize(result);
    }

    public CharSet Subtract(CharSet other) => Complement().Union(other).Complement();

    public CharSet Intersect(CharSet other) => Complement().Union(other.Complement()).Complement();

    public bool Contains(int c) => Ranges.Any(r => r.Lo <= c && c <= r.Hi);

    private static CharSet Normalize(IEnumerable<(int Lo, int Hi)> ranges)
    {
        var sorted = ranges.Where(r => r.Lo <= r.Hi).SelectMany(WithoutSurrogates).OrderBy(r => r.Lo).ToList();
        var merged = new List<(int Lo, int Hi)>();
        foreach (var r in sorted)
        {
            if (merged.Count > 0 && r.Lo <= merged[^1].Hi + 1) merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, r.Hi));
            else merged.Add(r);
        }
        return new CharSet(merged);
    }

    private static IEnumerable<(int Lo, int Hi)> WithoutSurrogates((int Lo, int Hi) r)
    {
        int lo = Math.Max(0, r.Lo), hi = Math.Min(MaxScalar, r.Hi);
        if (hi < SurrogateLow || lo > SurrogateHigh) { if (lo <= hi) yield return (lo, hi); yield break; }
        if (lo < SurrogateLow) yield return (lo, SurrogateLow - 1);
        if (hi > SurrogateHigh) yield return (SurrogateHigh + 1, hi);
    }
}
