using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// One sequence inside the engine: all its tokens (prompt, then generated), how many have their K/V in the pool,
/// and its own processors, sampler and detokenizer, so its output does not depend on what else is batched with it.
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
    public long Arrival { get; set; } = arrival;
    public bool Finished { get; set; }
    public int Generated => Tokens.Count - PromptLength;
    public int Pending => Tokens.Count - Computed;

    public LogitsProcessorList Processors { get; } = LogitsProcessorList.Create(request.Request.Config, request.Eos,
        promptLength ?? tokens.Count, (promptLength ?? tokens.Count) + request.MaxNewTokens);
    public SequenceSampler? Sampler { get; } = request.Request.Config.DoSample ? new SequenceSampler(SequenceSampler.SeedFor(request.Request.Config.Seed, index)) : null;
    /// <summary>Special tokens (eos) end a sequence but add no text, as vLLM streams by default.</summary>
    public StreamingDetokenizer Detokenizer { get; } = request.Tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);
    public StopStringMatcher Stops { get; } = new(request.Request.Config.StopStrings ?? []);
    public DateTime? LastTokenAt { get; set; }
    /// <summary>Scoring requests: the log-probability of each prompt token given its prefix (none for the first).</summary>
    public TokenLogprob?[]? PromptLogprobs { get; } = request.Score is null ? null : new TokenLogprob?[tokens.Count];

    /// <summary>A copy that continues independently from the same tokens (n &gt; 1); its K/V blocks are shared copy-on-write.</summary>
    public EngineSequence Fork(long id, int index) =>
        new(id, index, Request, Tokens, Arrival, PromptLength) { Computed = Computed, CachedPromptTokens = CachedPromptTokens };
}
