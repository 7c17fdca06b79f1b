using Gpt2Orleans.Inference.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// Constrained decoding (vLLM's structured-output bitmask): bans every token that cannot continue the row's output
/// under the grammar; eos only where the output is complete. Where nothing but the end can follow (the output is
/// complete, or no token of the vocabulary continues it), eos is forced, over what earlier processors banned: the
/// grammar decides when a structured output ends. Each row's automaton state is found from its generated tokens
/// through a memo keyed by a hash of them, so rows may be reordered or forked (beams) between steps.
/// </summary>
internal sealed class GrammarLogitsProcessor(GrammarAutomaton automaton, IReadOnlyList<int> eosTokenIds, int promptLength) : ILogitsProcessor
{
    private const ulong Seed = 14695981039346656037UL;
    private readonly Dictionary<ulong, GrammarAutomaton.State> _states = new() { [Seed] = automaton.Initial };

    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        int rows = (int)scores.shape[0], vocab = (int)scores.shape[1];
        var keep = new bool[rows * vocab];
        var forced = new List<int>();
        for (int r = 0; r < rows; r++)
        {
            var state = StateOf(inputIds[r]);
            var row = keep.AsSpan(r * vocab, vocab);
            bool any = false;
            if (state.CanContinue)
            {
                var mask = automaton.AllowedTokens(state);
                int limit = Math.Min(vocab, automaton.VocabSize);
                for (int word = 0; word < mask.Length; word++)
                    for (ulong bits = mask[word]; bits != 0; bits &= bits - 1)
                    {
                        int token = word * 64 + System.Numerics.BitOperations.TrailingZeroCount(bits);
                        if (token < limit) row[token] = any = true;
                    }
            }
            if (!any) forced.Add(r);
            if (state.Accepting || !any)
                foreach (int eos in eosTokenIds) row[eos] = true;
        }
        using var keepTensor = torch.tensor(keep, [rows, vocab], device: scores.device);
        scores.masked_fill_(keepTensor.logical_not(), double.NegativeInfinity);
        foreach (int r in forced)
            foreach (int eos in eosTokenIds) scores[r, eos] = torch.tensor(0f, scores.dtype, scores.device);
        return scores;
    }

    /// <summary>The automaton state after the row's generated tokens: the longest memoised prefix, then the rest, memoised.</summary>
    private GrammarAutomaton.State StateOf(IReadOnlyList<int> tokens)
    {
        int generated = tokens.Count - promptLength;
        var hashes = new ulong[generated + 1];
        hashes[0] = Seed;
        for (int i = 0; i < generated; i++) hashes[i + 1] = (hashes[i] ^ (uint)tokens[promptLength + i]) * 1099511628211UL + (ulong)i;
        int known = generated;
        while (!_states.ContainsKey(hashes[known])) known--;
        var state = _states[hashes[known]];
        for (int i = known; i < generated; i++)
        {
            state = automaton.AdvanceToken(state, tokens[promptLength + i]);
            _states[hashes[i + 1]] = state;
        }
        return state;
    }
}
