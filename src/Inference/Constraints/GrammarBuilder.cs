using System.Text;

namespace Gpt2Orleans.Inference.Constraints;

/// <summary>An (entry, exit) pair of nodes under construction: Thompson's construction, over bytes, with rule calls.</summary>
internal readonly record struct Fragment(int In, int Out);

/// <summary>
/// Builds a <see cref="Grammar"/> from fragments: byte ranges, literals, character sets (encoded as UTF-8 byte
/// sequences), sequence, alternation, bounded and unbounded repetition, and calls of rules (which may be recursive).
/// Refuses grammars larger than <see cref="MaxNodes"/> and rules that call themselves before consuming a byte
/// (left recursion, which a pushdown run would loop on).
/// </summary>
internal sealed class GrammarBuilder
{
    public const int MaxNodes = 500_000;

    private readonly List<List<Grammar.ByteEdge>> _bytes = [];
    private readonly List<List<int>> _epsilons = [];
    private readonly List<List<Grammar.Call>> _calls = [];
    private readonly List<bool> _ends = [];
    private readonly List<int> _rules = [];

    private int NewNode()
    {
        if (_ends.Count >= MaxNodes)
            throw new GrammarException($"the constraint is too large (over {MaxNodes} states): use smaller bounds or fewer alternatives", "schema");
        _bytes.Add([]);
        _epsilons.Add([]);
        _calls.Add([]);
        _ends.Add(false);
        return _ends.Count - 1;
    }

    /// <summary>An ε edge: joins fragments into shapes the combinators do not make (a junction several paths share).</summary>
    public void Epsilon(int from, int to) => _epsilons[from].Add(to);

    public Fragment Empty()
    {
        int n = NewNode();
        return new Fragment(n, n);
    }

    public Fragment Literal(string text) => Bytes(Encoding.UTF8.GetBytes(text));

    public Fragment Bytes(byte[] bytes)
    {
        int start = NewNode(), at = start;
        foreach (byte b in bytes)
        {
            int next = NewNode();
            _bytes[at].Add(new Grammar.ByteEdge(b, b, next));
            at = next;
        }
        return new Fragment(start, at);
    }

    /// <summary>One character of <paramref name="set"/>, as its UTF-8 bytes (each a short sequence of byte ranges).</summary>
    public Fragment Chars(CharSet set)
    {
        int start = NewNode(), end = NewNode();
        foreach (var (lo, hi) in set.Ranges)
            foreach (var sequence in Utf8Sequences(lo, hi))
            {
                int at = start;
                for (int i = 0; i < sequence.Length; i++)
                {
                    int next = i == sequence.Length - 1 ? end : NewNode();
                    _bytes[at].Add(new Grammar.ByteEdge(sequence[i].Lo, sequence[i].Hi, next));
                    at = next;
                }
            }
        return new Fragment(start, end);
    }

    public Fragment Seq(params IEnumerable<Fragment> parts)
    {
        Fragment? result = null;
        foreach (var part in parts)
        {
            if (result is { } r) Epsilon(r.Out, part.In);
            result = result is null ? part : new Fragment(result.Value.In, part.Out);
        }
        return result ?? Empty();
    }

    public Fragment Alt(params IEnumerable<Fragment> choices)
    {
        int start = NewNode(), end = NewNode();
        foreach (var choice in choices)
        {
            Epsilon(start, choice.In);
            Epsilon(choice.Out, end);
        }
        return new Fragment(start, end);
    }

    public Fragment Optional(Fragment f) => Alt(f, Empty());

    public Fragment Star(Fragment f)
    {
        int start = NewNode(), end = NewNode();
        Epsilon(start, f.In);
        Epsilon(start, end);
        Epsilon(f.Out, f.In);
        Epsilon(f.Out, end);
        return new Fragment(start, end);
    }

    /// <summary><paramref name="min"/> to <paramref name="max"/> (null: unbounded) copies of what <paramref name="make"/> builds; the optional copies nest (x(x(x)?)?)? so a run stays deterministic.</summary>
    public Fragment Repeat(Func<Fragment> make, int min, int? max)
    {
        var parts = new List<Fragment>();
        for (int i = 0; i < min; i++) parts.Add(make());
        if (max is null) parts.Add(Star(make()));
        else
        {
            Fragment tail = Empty();
            for (int i = min; i < max; i++) tail = Optional(Seq(make(), tail));
            parts.Add(tail);
        }
        return Seq(parts);
    }

    /// <summary>A rule whose body is defined later (<see cref="DefineRule"/>), so it can be called from inside itself.</summary>
    public int DeclareRule()
    {
        int start = NewNode();
        _rules.Add(start);
        return start;
    }

    public void DefineRule(int rule, Fragment body)
    {
        int end = NewNode();
        _ends[end] = true;
        Epsilon(rule, body.In);
        Epsilon(body.Out, end);
    }

    public Fragment CallRule(int rule)
    {
        int start = NewNode(), back = NewNode();
        _calls[start].Add(new Grammar.Call(rule, back));
        return new Fragment(start, back);
    }

    public Grammar Build(int root)
    {
        RefuseLeftRecursion();
        return new Grammar(_bytes.Select(e => e.ToArray()).ToArray(), _epsilons.Select(e => e.ToArray()).ToArray(),
            _calls.Select(c => c.ToArray()).ToArray(), _ends.ToArray(), root);
    }

    /// <summary>Rules reachable from a rule's start without consuming a byte, through ε edges and calls of rules that can be empty.</summary>
    private void RefuseLeftRecursion()
    {
        var nullable = new HashSet<int>();
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (int rule in _rules)
                if (!nullable.Contains(rule) && Walk(rule, nullable, null)) changed = nullable.Add(rule) | changed;
        }
        var calledFirst = _rules.ToDictionary(r => r, r =>
        {
            var called = new HashSet<int>();
            Walk(r, nullable, called);
            return called;
        });
        var state = new Dictionary<int, bool>(); // false: on the path; true: done
        bool Cyclic(int rule)
        {
            if (state.TryGetValue(rule, out bool done)) return !done;
            state[rule] = false;
            foreach (int next in calledFirst[rule])
                if (Cyclic(next)) return true;
            state[rule] = true;
            return false;
        }
        foreach (int rule in _rules)
            if (Cyclic(rule)) throw new GrammarException("the schema refers to itself ($ref) without any content in between, so no output could ever end", "$ref");
    }

    /// <summary>Walks a rule from its start without consuming; records the calls it meets; says whether it reaches its end.</summary>
    private bool Walk(int rule, HashSet<int> nullable, HashSet<int>? called)
    {
        var seen = new HashSet<int> { rule };
        var pending = new Stack<int>([rule]);
        bool reachesEnd = false;
        while (pending.TryPop(out int node))
        {
            if (_ends[node]) reachesEnd = true;
            foreach (int next in _epsilons[node])
                if (seen.Add(next)) pending.Push(next);
            foreach (var call in _calls[node])
            {
                called?.Add(call.Rule);
                if (nullable.Contains(call.Rule) && seen.Add(call.Return)) pending.Push(call.Return);
            }
        }
        return reachesEnd;
    }

    /// <summary>
    /// The scalar values lo..hi as UTF-8 byte-range sequences, each range of a sequence independent of the others
    /// (the split regex engines use, e.g. Rust's <c>regex-syntax</c> Utf8Sequences): split where the encoded length
    /// changes, then until every continuation byte spans all or one prefix of its range.
    /// </summary>
    internal static IEnumerable<(byte Lo, byte Hi)[]> Utf8Sequences(int lo, int hi)
    {
        var pending = new Stack<(int Lo, int Hi)>([(lo, hi)]);
        while (pending.TryPop(out var range))
        {
            (lo, hi) = range;
            bool split = false;
            foreach (int boundary in new[] { 0x7F, 0x7FF, 0xFFFF })
                if (lo <= boundary && boundary < hi)
                {
                    pending.Push((boundary + 1, hi));
                    pending.Push((lo, boundary));
                    split = true;
                    break;
                }
            if (split) continue;
            if (hi <= 0x7F)
            {
                yield return [((byte)lo, (byte)hi)];
                continue;
            }
            for (int i = 1; i < 4 && !split; i++)
            {
                int m = (1 << (6 * i)) - 1;
                if ((lo & ~m) == (hi & ~m)) continue;
                if ((lo & m) != 0)
                {
                    pending.Push(((lo | m) + 1, hi));
                    pending.Push((lo, lo | m));
                    split = true;
                }
                else if ((hi & m) != m)
                {
                    pending.Push((hi & ~m, hi));
                    pending.Push((lo, (hi & ~m) - 1));
                    split = true;
                }
            }
            if (split) continue;
            var a = Encode(lo);
            var b = Encode(hi);
            yield return a.Zip(b, (x, y) => (x, y)).ToArray();
        }
    }

    private static byte[] Encode(int scalar) => Encoding.UTF8.GetBytes(char.ConvertFromUtf32(scalar));
}
