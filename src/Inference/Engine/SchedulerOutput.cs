using Gpt2Orleans.Inference.KvCache;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// One sequence's part of a step: compute its tokens [Start, Start + Count). When that reaches its last token, the
/// row's logits are sampled for <see cref="Samplers"/>: the sequence itself, or, at the end of a prompt that
/// becomes several sequences (n &gt; 1, beams), the sequence and the forks the scheduler made of it.
/// </summary>
internal sealed record ScheduledChunk(EngineSequence Sequence, int Start, int Count, IReadOnlyList<EngineSequence> Samplers)
{
    /// <summary>Whether the chunk computes the sequence's last token (fixed when planned: sampling appends the next one).</summary>
    public bool ReachesEnd { get; } = Start + Count == Sequence.Tokens.Count;
}

/// <summary>What one step runs (vLLM's SchedulerOutput): the chunks, the block copies to make first, and who was preempted for them.</summary>
internal sealed record SchedulerOutput(IReadOnlyList<ScheduledChunk> Chunks, IReadOnlyList<BlockAllocator.CopyOnWrite> Copies, IReadOnlyList<EngineSequence> Preempted)
{
    public bool IsEmpty => Chunks.Count == 0;
    public int TokenCount => Chunks.Sum(c => c.Count);
}

/// <summary>A token chosen for a sequence in a step (by the sampler, or a beam's successor by beam search).</summary>
internal readonly record struct SampledToken(EngineSequence Sequence, int Token, Generation.TokenLogprob? Logprob);

/// <summary>A sampled token after the scheduler's checks: why it ends its sequence (eos, length), if it does.</summary>
internal readonly record struct CheckedToken(EngineSequence Sequence, int Token, Generation.TokenLogprob? Logprob, Generation.FinishReason? Finish);
