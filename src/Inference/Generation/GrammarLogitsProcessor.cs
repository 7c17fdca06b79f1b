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
        int rows = (int)scores.size(0), vocab = (int)scores.size(1);
        int limit = Math.Min(vocab, automaton.VocabSize);
        var masks = new ulong[]?[rows];
        var ends = new (bool Allowed, bool Forced)[rows];
        for (int r = 0; r < rows; r++)
        {
            var state = StateOf(inputIds[r]);
            var mask = state.CanContinue ? automaton.AllowedTokens(state) : null;
            bool any = mask is not null && AnyBelow(mask, limit);
            masks[r] = any ? mask : null;
            ends[r] = (state.Accepting || !any, !any);
        }
        if (scores.device_type == DeviceType.CPU && scores.dtype == ScalarType.Float32 && scores.is_contiguous())
            MaskInPlace(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(scores.bytes), vocab, limit, masks, ends);
        else
            MaskByTensor(scores, vocab, limit, masks, ends);
        return scores;
    }

    private static bool AnyBelow(ulong[] mask, int limit)
    {
        for (int word = 0; word * 64 < limit; word++)
        {
            ulong bits = mask[word];
            if (word * 64 + 64 > limit) bits &= (1UL << (limit - word * 64)) - 1;
            if (bits != 0) return true;
        }
        return false;
    }

    /// <summary>
    /// CPU float32 scores are masked where they lie, a 64-token word at a time (whole words allowed or banned are the
    /// common case): measured 0.23 → 0.02 ms per row per step against building a bool tensor and masked_fill.
    /// </summary>
    private void MaskInPlace(Span<float> scores, int vocab, int limit, ulong[]?[] masks, (bool Allowed, bool Forced)[] ends)
    {
        Span<float> eosScores = eosTokenIds.Count <= 64 ? stackalloc float[eosTokenIds.Count] : new float[eosTokenIds.Count];
        for (int r = 0; r < masks.Length; r++)
        {
            var row = scores.Slice(r * vocab, vocab);
            for (int e = 0; e < eosTokenIds.Count; e++) eosScores[e] = row[eosTokenIds[e]];
            if (masks[r] is not { } mask) row.Fill(float.NegativeInfinity);
            else
            {
                for (int start = 0; start < limit; start += 64)
                {
                    int count = Math.Min(64, limit - start);
                    ulong bits = mask[start >> 6];
                    if (bits == ulong.MaxValue && count == 64) continue;
                    if (bits == 0) { row.Slice(start, count).Fill(float.NegativeInfinity); continue; }
                    for (int i = 0; i < count; i++)
                        if ((bits >> i & 1) == 0) row[start + i] = float.NegativeInfinity;
                }
                row[limit..].Fill(float.NegativeInfinity);
            }
            if (!ends[r].Allowed) continue;
            for (int e = 0; e < eosTokenIds.Count; e++) row[eosTokenIds[e]] = ends[r].Forced ? 0f : eosScores[e];
        }
    }

    /// <summary>Any other device or dtype: one boolean tensor of what is kept, sent to the scores' device (one copy per step).</summary>
    private void MaskByTensor(Tensor scores, int vocab, int limit, ulong[]?[] masks, (bool Allowed, bool Forced)[] ends)
    {
        int rows = masks.Length;
        var keep = new bool[rows * vocab];
        for (int r = 0; r < rows; r++)
        {
            var row = keep.AsSpan(r * vocab, vocab);
            if (masks[r] is { } mask)
                for (int word = 0; word < mask.Length; word++)
                    for (ulong bits = mask[word]; bits != 0; bits &= bits - 1)
                    {
                        int token = word * 64 + System.Numerics.BitOperations.TrailingZeroCount(bits);
                        if (token < limit) row[token] = true;
                    }
            if (ends[r].Allowed)
                foreach (int eos in eosTokenIds) row[eos] = true;
        }
        using var keepTensor = torch.tensor(keep, [rows, vocab], device: scores.device);
        using var banned = keepTensor.logical_not();
        scores.masked_fill_(banned, double.NegativeInfinity);
        for (int r = 0; r < rows; r++)
            if (ends[r].Forced)
                foreach (int eos in eosTokenIds) scores[r, eos] = torch.tensor(0f, scores.dtype, scores.device);
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
