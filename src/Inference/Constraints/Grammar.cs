namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// A compiled output constraint: a recursive transition network over UTF-8 bytes (what xgrammar and llguidance call
/// a byte-level pushdown automaton). Each node has byte-range edges, ε edges and calls (enter a rule, come back to a
/// return node); a rule's end node returns to the caller, and the root rule's end accepts. Recursion (a JSON value
/// inside a JSON value, a recursive <c>$ref</c>) is a call, so nesting needs no depth fixed in advance. Immutable:
/// one grammar serves any number of requests; <see cref="GrammarAutomaton"/> runs it.
/// </summary>
public sealed class Grammar
{
    internal readonly record struct ByteEdge(byte Lo, byte Hi, int Target);
    internal readonly record struct Call(int Rule, int Return);

    internal ByteEdge[][] Bytes { get; }
    internal int[][] Epsilons { get; }
    internal Call[][] Calls { get; }
    internal bool[] Ends { get; }
    /// <summary>The root rule's start node.</summary>
    internal int Start { get; }
    public int NodeCount => Ends.Length;

    internal Grammar(ByteEdge[][] bytes, int[][] epsilons, Call[][] calls, bool[] ends, int start)
    {
        Bytes = bytes;
        Epsilons = epsilons;
        Calls = calls;
        Ends = ends;
        Start = start;
    }

    /// <summary>Whether <paramref name="text"/> (all of it) is an output this grammar allows: the reference the tests hold the token masks to.</summary>
    public bool Matches(string text)
    {
        var automaton = GrammarAutomaton.Untokenized(this);
        var state = automaton.Initial;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(text))
            if ((state = automaton.Step(state, b)).IsDead) return false;
        return state.Accepting;
    }
}
