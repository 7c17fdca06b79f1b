using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.KvCache;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// Decides each step (vLLM v1's scheduler): <see cref="Schedule"/> plans running sequences that are decoding first
/// (one token each, a beam search's beams together, the youngest preempted when the pool has no block for them),
/// then prefill chunks, then new sequences admitted round-robin across tenants (with weights and a per-tenant cap)
/// while the step's token budget and the pool allow; <see cref="UpdateFromOutput"/> takes the sampled tokens and
/// says which end their sequence. Plain logic over the <see cref="KvCacheManager"/>: no model, no tensors, and it
/// never calls back into the engine, so it is tested on its own.
/// </summary>
internal sealed class Scheduler(EngineOptions options, KvCacheManager kv, int contextLength)
{
    private readonly TenantQueues<EngineSequence> _waiting = new(options.TenantWeights);
    private readonly List<EngineSequence> _running = [];
    private long _lastId;

    private int _waitingCount;
    /// <summary>Sequences waiting for admission; read by submitting threads for the queue bound.</summary>
    public int WaitingCount { get => Volatile.Read(ref _waitingCount); private set => Volatile.Write(ref _waitingCount, value); }
    public int RunningCount => _running.Count;
    public long Preemptions { get; private set; }
    public IReadOnlyList<EngineSequence> Running => _running;

    /// <summary>A new sequence id (thread-safe: requests get theirs when submitted).</summary>
    public long NewSequenceId() => Interlocked.Increment(ref _lastId);

    public void Enqueue(EngineSequence sequence, bool front = false)
    {
        _waiting.Enqueue(sequence.Request.Tenant, sequence, front);
        WaitingCount++;
    }

    /// <summary>
    /// Ends a sequence: it leaves the running set (or the queue), and its blocks are freed, or kept under
    /// <paramref name="keepFor"/> for the owner's next turn.
    /// </summary>
    public void Finish(EngineSequence sequence, string? keepFor = null)
    {
        sequence.Finished = true;
        sequence.Request.Members.Remove(sequence);
        if (_running.Remove(sequence))
        {
            if (keepFor is null) kv.Free(sequence.Id);
            else kv.Keep(keepFor, sequence.Request.Tenant, sequence.Id, sequence.Tokens, sequence.Computed);
        }
        else if (_waiting.Remove(sequence.Request.Tenant, sequence))
        {
            WaitingCount--;
            kv.Free(sequence.Id); // a continued conversation waits holding its kept blocks
        }
    }

    public SchedulerOutput Schedule()
    {
        int budget = options.MaxBatchTokens;
        var chunks = new List<ScheduledChunk>();
        var copies = new List<BlockAllocator.CopyOnWrite>();
        var preempted = new List<EngineSequence>();
        var planned = new HashSet<EngineSequence>();

        // A beam search's beams advance together (its scorer needs all of them each step): they form one unit.
        var units = _running.Where(s => s.Pending == 1).OrderBy(s => s.Arrival)
            .GroupBy(s => s.IsBeam ? (object)s.Request : s).Select(g => g.ToList()).ToList();
        foreach (var unit in units)
        {
            if (budget < unit.Count) break;
            if (!unit.All(_running.Contains)) continue; // preempted for an older sequence in this loop
            if (!unit.All(sequence => EnsureSlots(sequence, unit, copies, planned, preempted))) continue;
            foreach (var sequence in unit) budget -= Plan(sequence, 1, chunks, planned); // a prompt's last token may be one of them
        }
        foreach (var sequence in _running.Where(s => s.Pending > 1 && !planned.Contains(s)).OrderBy(s => s.Arrival).ToList())
        {
            if (budget == 0) break;
            budget -= Plan(sequence, budget, chunks, planned);
        }
        while (budget > 0 && _running.Count < options.MaxRunningSequences && _waiting.Peek(CanAdmit) is { } candidate)
        {
            var (tenant, sequence) = candidate;
            int? computed = kv.Holds(sequence.Id) ? Extend(sequence, copies) : kv.Allocate(sequence.Id, sequence.Tokens, tenant, sequence.PromptLogprobs is not null);
            if (computed is null)
            {
                if (kv.EvictLeastRecentlyUsed() is not null) continue; // kept conversations give way to running work first
                break;                                                // no memory: it waits at the head of its queue
            }
            _waiting.Dequeue(tenant);
            WaitingCount--;
            sequence.Computed = computed.Value;
            if (sequence.Generated == 0) sequence.CachedPromptTokens = computed.Value;
            _running.Add(sequence);
            budget -= Plan(sequence, budget, chunks, planned);
        }
        return new SchedulerOutput(chunks, copies, preempted);
    }

    /// <summary>A chunk of up to <paramref name="budget"/> of the sequence's pending tokens; the tokens it takes.</summary>
    private int Plan(EngineSequence sequence, int budget, List<ScheduledChunk> chunks, HashSet<EngineSequence> planned)
    {
        int count = Math.Min(sequence.Pending, budget);
        bool reachesEnd = sequence.Computed + count == sequence.Tokens.Count;
        // A scored prompt is never sampled: its logits are the prompt's log-probabilities.
        var samplers = !reachesEnd || sequence.PromptLogprobs is not null ? [] : ForkAtPromptEnd(sequence);
        chunks.Add(new ScheduledChunk(sequence, sequence.Computed, count, samplers));
        planned.Add(sequence);
        return count;
    }

    /// <summary>
    /// n &gt; 1 and beam search: when a prompt's last token is computed, the sequence becomes the request's width of
    /// sequences. The prompt's KV is computed once: the forks share its blocks copy-on-write, and all sample the same row.
    /// </summary>
    private IReadOnlyList<EngineSequence> ForkAtPromptEnd(EngineSequence sequence)
    {
        var request = sequence.Request;
        if (sequence.Generated > 0 || request.Width == 1 || request.Members.Count > 1) return [sequence];
        for (int index = 1; index < request.Width; index++) request.Members.Add(ForkRunning(sequence, index));
        return [.. request.Members];
    }

    private EngineSequence ForkRunning(EngineSequence source, int index)
    {
        var copy = source.Fork(NewSequenceId(), index);
        kv.Fork(source.Id, copy.Id);
        _running.Add(copy);
        return copy;
    }

    /// <summary>
    /// After the forward pass: what each chunk computed is recorded (its full blocks join the prefix cache), and the
    /// sampled tokens are appended, each checked for eos and the length limits (stop strings are the output processor's).
    /// </summary>
    public IReadOnlyList<CheckedToken> UpdateFromOutput(SchedulerOutput output, IReadOnlyList<SampledToken> sampled)
    {
        foreach (var chunk in output.Chunks)
            foreach (var sequence in chunk.Samplers.Prepend(chunk.Sequence).Distinct())
            {
                sequence.Computed = chunk.Start + chunk.Count;
                kv.MarkComputed(sequence.Id, sequence.Computed);
            }
        var checkedTokens = new CheckedToken[sampled.Count];
        for (int i = 0; i < sampled.Count; i++)
        {
            var (sequence, token, logprob) = sampled[i];
            sequence.Tokens.Add(token);
            checkedTokens[i] = new CheckedToken(sequence, token, logprob, StopsAt(sequence, token));
        }
        return checkedTokens;
    }

    /// <summary>vLLM's check_stop: an eos token, or max_new_tokens or the context reached.</summary>
    private FinishReason? StopsAt(EngineSequence sequence, int token) =>
        sequence.Request.Eos.Contains(token) ? FinishReason.EndOfSequence
        : sequence.Generated >= sequence.Request.MaxNewTokens || sequence.Tokens.Count >= contextLength ? FinishReason.Length
        : null;

    /// <summary>
    /// A beam search step's outcome: beam j continues beam <c>Source</c> with <c>Token</c>. A beam chosen twice is forked
    /// (its KV shared copy-on-write) before any appends its token; a beam no one continues leaves and frees its blocks.
    /// </summary>
    public void ReplaceBeams(EngineRequestState request, IReadOnlyList<BeamSearch.NextBeam> next)
    {
        var live = request.Members.ToList();
        var used = new HashSet<int>();
        var successors = next.Select(n => used.Add(n.Source) ? live[n.Source] : ForkRunning(live[n.Source], live[n.Source].Index)).ToList();
        for (int j = 0; j < successors.Count; j++) successors[j].Tokens.Add(next[j].Token);
        foreach (var dropped in live.Where((_, i) => !used.Contains(i))) Finish(dropped);
        request.Members.Clear();
        request.Members.AddRange(successors);
    }

    /// <summary>A continued conversation: slots for the tokens beyond what its kept KV covers, if the pool has room for all of them.</summary>
    private int? Extend(EngineSequence sequence, List<BlockAllocator.CopyOnWrite> copies)
    {
        if (!kv.CanExtend(sequence.Id, sequence.Tokens.Count)) return null;
        kv.TryExtend(sequence.Id, sequence.Tokens, copies);
        return sequence.Computed;
    }

    /// <summary>Gives the sequence's newest tokens their slots, preempting the youngest unplanned sequences when the pool is full.</summary>
    private bool EnsureSlots(EngineSequence sequence, List<EngineSequence> unit, List<BlockAllocator.CopyOnWrite> copies,
        HashSet<EngineSequence> planned, List<EngineSequence> preempted)
    {
        while (!kv.TryExtend(sequence.Id, sequence.Tokens, copies))
        {
            if (kv.EvictLeastRecentlyUsed() is not null) continue;
            // Beams are not preempted one by one (their siblings would wait on them); a beam unit waits instead.
            var victim = _running.Where(s => !planned.Contains(s) && !s.IsBeam && (!sequence.IsBeam || !unit.Contains(s))).MaxBy(s => s.Arrival);
            if (victim is null) return false;
            Preempt(victim);
            preempted.Add(victim);
            if (victim == sequence) return false;
        }
        return true;
    }

    /// <summary>Recompute later (vLLM's default): the blocks are freed (full ones stay cached) and the sequence waits first in line.</summary>
    private void Preempt(EngineSequence sequence)
    {
        _running.Remove(sequence);
        kv.Free(sequence.Id);
        sequence.Computed = 0;
        Preemptions++;
        Enqueue(sequence, front: true);
    }

    /// <summary>A tenant's next sequence may start when the tenant is under its cap of running sequences.</summary>
    private bool CanAdmit(string tenant) =>
        options.MaxSequencesPerTenant is not { } cap || _running.Count(s => s.Request.Tenant == tenant) < cap;
}
