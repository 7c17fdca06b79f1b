using System.Globalization;

namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// The subset of ECMAScript regular expressions (JSON Schema's <c>pattern</c> dialect) that a finite automaton can
/// hold: literals, escapes (<c>\d \w \s</c> and their negations, <c>\n \t \r \f \v \0 \xHH \uHHHH</c>, escaped
/// metacharacters), classes with ranges and negation, <c>.</c>, groups (capturing, <c>(?:…)</c>, named), alternation,
/// and the quantifiers <c>* + ? {n} {n,} {n,m}</c> (lazy ones match the same strings). Anchors only at the ends.
/// Lookaround, backreferences and word boundaries are refused, naming the construct.
/// </summary>
internal abstract record RegexPattern
{
    public sealed record Chars(CharSet Set) : RegexPattern;
    public sealed record Sequence(IReadOnlyList<RegexPattern> Parts) : RegexPattern;
    public sealed record Choice(IReadOnlyList<RegexPattern> Options) : RegexPattern;
    public sealed record Repeat(RegexPattern Body, int Min, int? Max) : RegexPattern;

    /// <summary>The largest bound of a counted repetition; larger ones would build automata too big to use.</summary>
    public const int MaxCount = 1000;

    /// <summary>A parsed pattern and whether it was anchored at its start (<c>^</c>) and end (<c>$</c>).</summary>
    public static (RegexPattern Pattern, bool AnchoredStart, bool AnchoredEnd) Parse(string pattern, string keyword)
    {
        var parser = new Parser(pattern, keyword);
        return parser.ParseWhole();
    }

    /// <summary>The automaton fragment for this pattern, each character made by <paramref name="chars"/> (raw UTF-8, or as a JSON string escapes it).</summary>
    public Fragment Build(GrammarBuilder builder, Func<CharSet, Fragment> chars) => this switch
    {
        Chars c => chars(c.Set),
        Sequence s => builder.Seq(s.Parts.Select(p => p.Build(builder, chars)).ToList()),
        Choice c => builder.Alt(c.Options.Select(o => o.Build(builder, chars)).ToList()),
        Repeat r => builder.Repeat(() => r.Body.Build(builder, chars), r.Min, r.Max),
        _ => throw new InvalidOperationException(),
    };

    private sealed class Parser(string text, string keyword)
    {
        private int _at;

        private GrammarException Error(string what) => new($"{keyword} '{text}': {what} (at offset {_at})", keyword);

        public (RegexPattern, bool, bool) ParseWhole()
        {
            bool start = _at < text.Length && text[_at] == '^';
            if (start) _at++;
            var pattern = ParseChoice();
            bool end = _at < text.Length && text[_at] == '$';
            if (end) _at++;
            if (_at < text.Length) throw Error(text[_at] == ')' ? "an unmatched ')'" : text[_at] is '^' or '$' ? "anchors are supported only at the ends" : $"unexpected '{text[_at]}'");
            return (pattern, start, end);
        }

        private RegexPattern ParseChoice()
        {
            var options = new List<RegexPattern> { ParseSequence() };
            while (_at < text.Length && text[_at] == '|')
            {
                _at++;
                options.Add(ParseSequence());
            }
            return options.Count == 1 ? options[0] : new Choice(options);
        }

        private RegexPattern ParseSequence()
        {
            var parts = new List<RegexPattern>();
            while (_at < text.Length && text[_at] is not ('|' or ')'))
            {
                if (text[_at] == '$' && _at == text.Length - 1) break;
                parts.Add(ParseQuantified(ParseAtom()));
            }
            return parts.Count == 1 ? parts[0] : new Sequence(parts);
        }

        private RegexPattern ParseQuantified(RegexPattern atom)
        {
            while (_at < text.Length)
            {
                (int min, int? max) bounds;
                char c = text[_at];
                if (c == '*') { bounds = (0, null); _at++; }
                else if (c == '+') { bounds = (1, null); _at++; }
                else if (c == '?') { bounds = (0, 1); _at++; }
                else if (c == '{' && TryCount(out bounds)) { }
                else break;
                if (_at < text.Length && text[_at] == '?') _at++; // lazy: the same strings
                if (bounds.min > MaxCount || bounds.max > MaxCount) throw Error($"a repetition count above {MaxCount}");
                if (bounds.max < bounds.min) throw Error("a repetition whose maximum is below its minimum");
                atom = new Repeat(atom, bounds.min, bounds.max);
            }
            return atom;
        }

        private bool TryCount(out (int, int?) bounds)
        {
            bounds = default;
            int close = text.IndexOf('}', _at);
            if (close < 0) return false;
            var body = text[(_at + 1)..close];
            var parts = body.Split(',');
            static bool Number(string s, out int n) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out n);
            if (parts.Length == 1 && Number(parts[0], out int exact)) bounds = (exact, exact);
            else if (parts.Length == 2 && Number(parts[0], out int min) && parts[1].Length == 0) bounds = (min, null);
            else if (parts.Length == 2 && Number(parts[0], out min) && Number(parts[1], out int max)) bounds = (min, max);
            else return false; // ECMAScript reads a '{' that starts no count as a literal
            _at = close + 1;
            return true;
        }

        private RegexPattern ParseAtom()
        {
            char c = text[_at];
            switch (c)
            {
                case '(':
                    _at++;
                    if (text.AsSpan(_at).StartsWith("?:")) _at += 2;
                    else if (text.AsSpan(_at).StartsWith("?<") && !text.AsSpan(_at).StartsWith("?<=") && !text.AsSpan(_at).StartsWith("?<!"))
                    {
                        int close = text.IndexOf('>', _at);
                        if (close < 0) throw Error("an unterminated group name");
                        _at = close + 1;
                    }
                    else if (_at < text.Length && text[_at] == '?') throw Error("lookaround and inline flags are not supported");
                    var inner = ParseChoice();
                    if (_at >= text.Length || text[_at] != ')') throw Error("an unclosed '('");
                    _at++;
                    return inner;
                case '[':
                    return new Chars(ParseClass());
                case '.':
                    _at++;
                    return new Chars(CharSet.Dot);
                case '\\':
                    return new Chars(ParseEscape(inClass: false));
                case '*' or '+' or '?':
                    throw Error($"'{c}' with nothing to repeat");
                case '^' or '$':
                    throw Error("anchors are supported only at the ends");
                default:
                    int scalar = char.ConvertToUtf32(text, _at);
                    _at += char.IsSurrogatePair(text, _at) ? 2 : 1;
                    return new Chars(CharSet.Single(scalar));
            }
        }

        private CharSet ParseClass()
        {
            _at++; // '['
            bool negate = _at < text.Length && text[_at] == '^';
            if (negate) _at++;
            var set = CharSet.Empty;
            bool first = true;
            while (true)
            {
                if (_at >= text.Length) throw Error("an unclosed '['");
                if (text[_at] == ']' && !first) break;
                first = false;
                var low = ClassAtom();
                if (_at + 1 < text.Length && text[_at] == '-' && text[_at + 1] != ']')
                {
                    _at++;
                    var high = ClassAtom();
                    if (low.Ranges.Count != 1 || high.Ranges.Count != 1 || low.Ranges[0].Lo != low.Ranges[0].Hi || high.Ranges[0].Lo != high.Ranges[0].Hi)
                        throw Error("a class range between sets");
                    if (high.Ranges[0].Lo < low.Ranges[0].Lo) throw Error("a class range out of order");
                    set = set.Union(CharSet.Range(low.Ranges[0].Lo, high.Ranges[0].Lo));
                }
                else set = set.Union(low);
            }
            _at++; // ']'
            return negate ? set.Complement() : set;
        }

        private CharSet ClassAtom()
        {
            if (text[_at] == '\\') return ParseEscape(inClass: true);
            int scalar = char.ConvertToUtf32(text, _at);
            _at += char.IsSurrogatePair(text, _at) ? 2 : 1;
            return CharSet.Single(scalar);
        }

        private CharSet ParseEscape(bool inClass)
        {
            _at++; // '\'
            if (_at >= text.Length) throw Error("a trailing '\\'");
            char c = text[_at++];
            switch (c)
            {
                case 'd': return CharSet.Digit;
                case 'D': return CharSet.Digit.Complement();
                case 'w': return CharSet.Word;
                case 'W': return CharSet.Word.Complement();
                case 's': return CharSet.Space;
                case 'S': return CharSet.Space.Complement();
                case 'n': return CharSet.Single('\n');
                case 't': return CharSet.Single('\t');
                case 'r': return CharSet.Single('\r');
                case 'f': return CharSet.Single('\f');
                case 'v': return CharSet.Single('\v');
                case '0': return CharSet.Single(0);
                case 'b' when inClass: return CharSet.Single('\b');
                case 'x': return CharSet.Single(Hex(2));
                case 'u': return CharSet.Single(Hex(4));
                case 'b' or 'B': throw Error("word boundaries (\\b, \\B) are not supported");
                case 'p' or 'P': throw Error("Unicode property classes (\\p, \\P) are not supported");
                case >= '1' and <= '9': throw Error("backreferences are not supported");
                case 'k': throw Error("named backreferences are not supported");
                default:
                    if (char.IsAsciiLetterOrDigit(c)) throw Error($"the escape '\\{c}' is not supported");
                    return CharSet.Single(c);
            }
        }

        private int Hex(int digits)
        {
            if (_at + digits > text.Length || !int.TryParse(text.AsSpan(_at, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int value))
                throw Error($"an escape needs {digits} hex digits");
            _at += digits;
            if (value is >= 0xD800 and <= 0xDFFF) throw Error("a surrogate escape");
            return value;
        }
    }
}
