using System.Globalization;

namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// The decimal integers in [lo, hi], written without leading zeros or "-0", as a grammar fragment: the digit-by-digit
/// split of a numeric range into fixed-length ranges (the construction range-to-regex generators use).
/// </summary>
internal static class IntegerRange
{
    /// <summary>The largest magnitude: 16 digits, as for unbounded integers.</summary>
    public const long Largest = 9_999_999_999_999_999;

    public static Fragment Build(GrammarBuilder builder, long lo, long hi)
    {
        var parts = new List<Fragment>();
        if (lo < 0) parts.Add(builder.Seq(builder.Literal("-"), Natural(builder, hi < 0 ? -hi : 1, -lo)));
        if (hi >= 0) parts.Add(Natural(builder, Math.Max(0, lo), hi));
        return parts.Count == 1 ? parts[0] : builder.Alt(parts);
    }

    private static Fragment Natural(GrammarBuilder builder, long lo, long hi)
    {
        var lengths = new List<Fragment>();
        for (int n = Digits(lo); n <= Digits(hi); n++)
        {
            long first = n == 1 ? 0 : Pow10(n - 1), last = Pow10(n) - 1;
            lengths.Add(SameLength(builder, Text(Math.Max(lo, first)), Text(Math.Min(hi, last))));
        }
        return lengths.Count == 1 ? lengths[0] : builder.Alt(lengths);
    }

    /// <summary>Digit strings of one length between <paramref name="a"/> and <paramref name="z"/> (inner positions may be zero).</summary>
    private static Fragment SameLength(GrammarBuilder builder, string a, string z)
    {
        int n = a.Length;
        Fragment Digit(char from, char to) => builder.Chars(CharSet.Range(from, to));
        Fragment AnyDigits(int count) => builder.Repeat(() => Digit('0', '9'), count, count);
        if (n == 1) return Digit(a[0], z[0]);
        if (a[0] == z[0]) return builder.Seq(builder.Literal(a[..1]), SameLength(builder, a[1..], z[1..]));
        if (a[1..].All(c => c == '0') && z[1..].All(c => c == '9')) return builder.Seq(Digit(a[0], z[0]), AnyDigits(n - 1));
        var parts = new List<Fragment> { builder.Seq(builder.Literal(a[..1]), SameLength(builder, a[1..], new string('9', n - 1))) };
        if (z[0] - a[0] > 1) parts.Add(builder.Seq(Digit((char)(a[0] + 1), (char)(z[0] - 1)), AnyDigits(n - 1)));
        parts.Add(builder.Seq(builder.Literal(z[..1]), SameLength(builder, new string('0', n - 1), z[1..])));
        return builder.Alt(parts);
    }

    private static int Digits(long n) => Text(n).Length;
    private static string Text(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static long Pow10(int n)
    {
        long p = 1;
        for (int i = 0; i < n; i++) p *= 10;
        return p;
    }
}
