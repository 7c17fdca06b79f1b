using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// One sequence inside the engine: all its tokens (prompt, then generated), how many have their K/V in the pool,
/// its own processors, sampler and output state, so its output does not depend on what else is batched with it.
/// A sequence whose every token but the last is computed is decoding; one with more is prefilling.
/// </summary>
internal sealed class EngineSequence(long id, int index, EngineRequestState request, IReadOnlyList<int> tokens, long arrival, int? promptLength = null)
{
    public long Id { get; } = id;
    public int Index { get; } = index;
    public EngineRequestState Request { get; } = request;
    public List<int> Tokens { get; } = [.. tokens];
    public int PromptLength { get; } = promptLength ?? tokens.Count;
    public int Computed { get; set; }
    public int CachedPromptTokens { get; set; }
    /// <summary>Admission order; the youngest running sequence is preempted first.</summary>
    public long Arrival { get; } = arrival;
    public bool Finished { get; set; }
    public int Generated => Tokens.Count - PromptLength;
    public int Pending => Tokens.Count - Computed;
    public bool IsBeam => Request.Beams is not null;

    public LogitsProcessorList Processors { get; } = LogitsProcessorList.Create(request.Config, request.Eos,
        promptLength ?? tokens.Count, (promptLength ?? tokens.Count) + request.MaxNewTokens,
        request.Grammar);
    public SequenceSampler? Sampler { get; } = request.Config.Samples && request.Beams is null
        ? new SequenceSampler(SequenceSampler.SeedFor(request.Config.Seed, index)) : null;
    /// <summary>Detokenizing and stop strings (the output processor's state for this sequence).</summary>
    public SequenceOutput Output { get; } = new(request.Tokenizer, request.Config.StopStrings ?? []);
    public DateTime? LastTokenAt { get; set; }
    /// <summary>Scoring requests: the log-probability of each prompt token given its prefix (none for the first).</summary>
    public TokenLogprob?[]? PromptLogprobs { get; } = request.Score is null ? null : new TokenLogprob?[tokens.Count];

    /// <summary>A copy that continues independently from the same tokens; its K/V blocks are shared copy-on-write.</summary>
    public EngineSequence Fork(long id, int index) =>
        new(id, index, Request, Tokens, Arrival, PromptLength) { Computed = Computed, CachedPromptTokens = CachedPromptTokens };
}
