namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// JSON's own building blocks as grammar fragments, for one <see cref="GrammarBuilder"/>: bounded whitespace, string
/// characters (raw UTF-8 or escapes), numbers with bounded digits, and any JSON value (recursive rules, built once).
/// The bounds keep a model from running on forever inside one token class: one optional space between two JSON
/// tokens (outlines' default; a model that likes whitespace would otherwise fill its budget with it before the
/// value closes), 16 integer and 15 fraction digits, two exponent digits.
/// </summary>
internal sealed class JsonGrammar(GrammarBuilder builder)
{
    private static readonly CharSet Controls = CharSet.Range(0, 0x1F);
    private static readonly CharSet Raw = CharSet.Any.Subtract(Controls).Subtract(CharSet.Of(('"', '"'), ('\\', '\\')));
    private static readonly CharSet Hex = CharSet.Of(('0', '9'), ('a', 'f'), ('A', 'F'));
    private int? _value, _string;

    public GrammarBuilder Builder => builder;

    public Fragment Whitespace() => builder.Optional(builder.Literal(" "));

    public Fragment Token(string literal) => builder.Seq(Whitespace(), builder.Literal(literal));

    /// <summary>Any one character of a JSON string's content: raw, or one of JSON's escapes.</summary>
    public Fragment StringChar() => builder.Alt(
        builder.Chars(Raw),
        builder.Seq(builder.Literal("\\"), builder.Chars(CharSet.Of(('"', '"'), ('\\', '\\'), ('/', '/'), ('b', 'b'), ('f', 'f'), ('n', 'n'), ('r', 'r'), ('t', 't')))),
        builder.Seq(builder.Literal("\\u00"), builder.Chars(CharSet.Range('0', '1')), builder.Chars(Hex)));

    /// <summary>One character of <paramref name="set"/> as it is written inside a JSON string: a quote, a backslash or a control character as its escape.</summary>
    public Fragment StringChar(CharSet set)
    {
        var choices = new List<Fragment>();
        var raw = set.Intersect(Raw);
        if (!raw.IsEmpty) choices.Add(builder.Chars(raw));
        foreach (var (lo, hi) in set.Subtract(Raw).Ranges)
            for (int c = lo; c <= hi; c++)
                choices.Add(builder.Literal(c switch
                {
                    '"' => "\\\"", '\\' => "\\\\", '\b' => "\\b", '\f' => "\\f", '\n' => "\\n", '\r' => "\\r", '\t' => "\\t",
                    _ => $"\\u{c:x4}",
                }));
        return choices.Count == 1 ? choices[0] : builder.Alt(choices);
    }

    public Fragment Quoted(Fragment content) => builder.Seq(builder.Literal("\""), content, builder.Literal("\""));

    /// <summary>Any JSON string (as a call of one shared rule).</summary>
    public Fragment String() => builder.CallRule(Shared(ref _string, () => Quoted(builder.Star(StringChar()))));

    public Fragment Integer() => builder.Seq(builder.Optional(builder.Literal("-")), NaturalDigits());

    public Fragment Number() => builder.Seq(Integer(),
        builder.Optional(builder.Seq(builder.Literal("."), builder.Repeat(() => builder.Chars(CharSet.Digit), 1, 15))),
        builder.Optional(builder.Seq(builder.Chars(CharSet.Of(('e', 'e'), ('E', 'E'))), builder.Optional(builder.Chars(CharSet.Of(('+', '+'), ('-', '-')))),
            builder.Repeat(() => builder.Chars(CharSet.Digit), 1, 2))));

    /// <summary>0, or up to 16 digits without a leading zero.</summary>
    public Fragment NaturalDigits() => builder.Alt(builder.Literal("0"),
        builder.Seq(builder.Chars(CharSet.Range('1', '9')), builder.Repeat(() => builder.Chars(CharSet.Digit), 0, 15)));

    /// <summary>Any JSON value (a call of one shared recursive rule).</summary>
    public Fragment Value() => builder.CallRule(ValueRule());

    /// <summary>The rule of any JSON value, for callers that call it themselves.</summary>
    public int ValueRule() => Shared(ref _value, () => builder.Alt(AnyObject(null), AnyArray(), String(), Number(),
        builder.Literal("true"), builder.Literal("false"), builder.Literal("null")));

    /// <summary>A rule built once per grammar; declared before its body is built, so the body may call it (recursion).</summary>
    private int Shared(ref int? rule, Func<Fragment> body)
    {
        if (rule is null)
        {
            rule = builder.DeclareRule();
            builder.DefineRule(rule.Value, body());
        }
        return rule.Value;
    }

    /// <summary>An object with any keys, each value made by <paramref name="value"/> (null: any value).</summary>
    public Fragment AnyObject(Func<Fragment>? value)
    {
        value ??= Value;
        Fragment Member() => builder.Seq(Whitespace(), String(), Token(":"), Whitespace(), value());
        return builder.Seq(builder.Literal("{"),
            builder.Optional(builder.Seq(Member(), builder.Star(builder.Seq(Token(","), Member())))), Token("}"));
    }

    /// <summary>An array of <paramref name="min"/> to <paramref name="max"/> items, each made by <paramref name="item"/> (null: any value).</summary>
    public Fragment AnyArray(Func<Fragment>? item = null, int min = 0, int? max = null)
    {
        item ??= Value;
        Fragment First() => builder.Seq(Whitespace(), item());
        Fragment Next() => builder.Seq(Token(","), Whitespace(), item());
        var items = max == 0 ? builder.Empty()
            : min == 0 ? builder.Optional(builder.Seq(First(), builder.Repeat(Next, 0, max - 1)))
            : builder.Seq(First(), builder.Repeat(Next, min - 1, max - 1));
        return builder.Seq(builder.Literal("["), items, Token("]"));
    }
}
