using Gpt2Orleans.Inference.Constraints;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>
/// Random complete outputs of a grammar, byte by byte: random allowed bytes for a while, then the shortest way to an
/// end (breadth-first over the automaton's states). A byte-level sampler that needs no model.
/// </summary>
public static class GrammarWalker
{
    public static string Walk(Grammar grammar, Random random, int budget)
    {
        var automaton = GrammarAutomaton.Untokenized(grammar);
        var state = automaton.Initial;
        var bytes = new List<byte>();
        while (bytes.Count <= budget)
        {
            if (state.Accepting && (!state.CanContinue || random.Next(6) == 0)) return Text(bytes);
            var options = Enumerable.Range(0, 256).Select(b => (Byte: (byte)b, Next: automaton.Step(state, (byte)b))).Where(o => !o.Next.IsDead).ToList();
            Assert.NotEmpty(options); // a live state always continues or ends
            // ASCII mostly, so strings stay readable; other bytes sometimes, so UTF-8 sequences are walked too.
            var ascii = options.Where(o => o.Byte is >= 0x20 and < 0x7F).ToList();
            var pick = ascii.Count > 0 && random.Next(8) != 0 ? ascii[random.Next(ascii.Count)] : options[random.Next(options.Count)];
            bytes.Add(pick.Byte);
            state = pick.Next;
        }
        bytes.AddRange(ShortestEnd(automaton, state));
        return Text(bytes);
    }

    private static IEnumerable<byte> ShortestEnd(GrammarAutomaton automaton, GrammarAutomaton.State from)
    {
        var previous = new Dictionary<GrammarAutomaton.State, (GrammarAutomaton.State From, byte Byte)>(ReferenceEqualityComparer.Instance);
        var queue = new Queue<GrammarAutomaton.State>([from]);
        previous[from] = (from, 0);
        while (queue.TryDequeue(out var state))
        {
            if (state.Accepting)
            {
                var path = new List<byte>();
                for (var at = state; !ReferenceEquals(at, from); at = previous[at].From) path.Add(previous[at].Byte);
                path.Reverse();
                return path;
            }
            for (int b = 0; b < 256; b++)
            {
                var next = automaton.Step(state, (byte)b);
                if (!next.IsDead && previous.TryAdd(next, (state, (byte)b))) queue.Enqueue(next);
            }
        }
        throw new InvalidOperationException("no end is reachable");
    }

    private static string Text(List<byte> bytes)
    {
        var decoder = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true);
        return decoder.GetString(bytes.ToArray()); // throws on invalid UTF-8: the grammar must never allow it
    }
}
