using Gpt2Orleans.Inference.KvCache;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>What one step runs: for each sequence, the tokens [Start, Start + Count) to compute, and the block copies to make first.</summary>
internal sealed record StepPlan(IReadOnlyList<(EngineSequence Sequence, int Start, int Count)> Work, IReadOnlyList<BlockAllocator.CopyOnWrite> Copies)
{
    public bool IsEmpty => Work.Count == 0;
}

/// <summary>
/// Decides each step (vLLM's scheduler): running sequences that are decoding go first (one token each, the youngest
/// preempted when the pool has no block for them), then prefill chunks, then new sequences admitted round-robin
/// across tenants (with weights and a per-tenant cap) while the step's token budget and the pool allow. Plain
/// logic over a <see cref="BlockAllocator"/>, so it is tested without a model.
/// </summary>
internal sealed class Scheduler(EngineOptions options, BlockAllocator allocator, Func<bool> releaseKeptSequence)
{
    private readonly Dictionary<string, LinkedList<EngineSequence>> _waiting = [];
    private readonly List<string> _tenants = [];
    private readonly List<EngineSequence> _running = [];
    private int _turn;
    private int _creditsLeft;

    private int _waitingCount;
    /// <summary>Sequences waiting for admission; read by submitting threads for the queue bound.</summary>
    public int WaitingCount { get => Volatile.Read(ref _waitingCount); private set => Volatile.Write(ref _waitingCount, value); }
    public int RunningCount => _running.Count;
    public long Preemptions { get; private set; }
    public IReadOnlyList<EngineSequence> Running => _running;

    public void Enqueue(EngineSequence sequence, bool front = false)
    {
        string tenant = sequence.Request.Request.TenantId;
        if (!_waiting.TryGetValue(tenant, out var queue))
        {
            _waiting[tenant] = queue = new LinkedList<EngineSequence>();
            _tenants.Add(tenant);
        }
        if (front) queue.AddFirst(sequence); else queue.AddLast(sequence);
        WaitingCount++;
    }

    /// <summary>Adds an already admitted sequence (a fork) to the running set.</summary>
    public void AddRunning(EngineSequence sequence) => _running.Add(sequence);

    /// <summary>Takes a finished sequence out of the running set but leaves its blocks allocated (a kept conversation).</summary>
    public void Detach(EngineSequence sequence) => _running.Remove(sequence);

    /// <summary>Forgets a sequence (finished or cancelled) and frees its blocks.</summary>
    public void Remove(EngineSequence sequence)
    {
        if (_running.Remove(sequence)) allocator.Free(sequence.Id);
        else if (_waiting.TryGetValue(sequence.Request.Request.TenantId, out var queue) && queue.Remove(sequence)) WaitingCount--;
    }

    public StepPlan Schedule()
    {
        int budget = options.MaxBatchTokens;
        var work = new List<(EngineSequence, int, int)>();
        var copies = new List<BlockAllocator.CopyOnWrite>();
        var planned = new HashSet<EngineSequence>();

        // A beam search's beams advance together (its scorer needs all of them each step): they form one unit.
        var units = _running.Where(s => s.Pending == 1).OrderBy(s => s.Arrival)
            .GroupBy(s => IsBeam(s) ? (object)s.Request : s).Select(g => g.ToList()).ToList();
        foreach (var unit in units)
        {
            if (budget < unit.Count) break;
            if (!unit.All(_running.Contains)) continue; // preempted for an older sequence in this loop
            if (!unit.All(sequence => EnsureSlots(sequence, unit, copies, planned))) continue;
            foreach (var sequence in unit)
            {
                work.Add((sequence, sequence.Computed, 1));
                planned.Add(sequence);
            }
            budget -= unit.Count;
        }
        foreach (var sequence in _running.Where(s => s.Pending > 1 && !planned.Contains(s)).OrderBy(s => s.Arrival).ToList())
        {
            if (budget == 0) break;
            int chunk = Math.Min(sequence.Pending, budget);
            work.Add((sequence, sequence.Computed, chunk));
            planned.Add(sequence);
            budget -= chunk;
        }
        while (budget > 0 && _running.Count < options.MaxRunningSequences && NextWaiting() is { } candidate)
        {
            var (queue, sequence) = candidate;
            int? computed = allocator.Contains(sequence.Id) ? Extend(sequence, copies) : allocator.TryAllocate(sequence.Id, sequence.Tokens, Salt(sequence));
            if (computed is null)
            {
                if (releaseKeptSequence()) continue; // kept conversations give way to running work first
                break;                                // no memory: it waits at the head of its queue
            }
            queue.RemoveFirst();
            WaitingCount--;
            ConsumeCredit();
            sequence.Computed = computed.Value;
            if (sequence.Generated == 0) sequence.CachedPromptTokens = computed.Value;
            _running.Add(sequence);
            int chunk = Math.Min(sequence.Pending, budget);
            work.Add((sequence, sequence.Computed, chunk));
            planned.Add(sequence);
            budget -= chunk;
        }
        return new StepPlan(work, copies);
    }

    /// <summary>A continued conversation: slots for the tokens beyond what its kept KV covers, if the pool has room for all of them.</summary>
    private int? Extend(EngineSequence sequence, List<BlockAllocator.CopyOnWrite> copies)
    {
        int have = allocator.TokenCount(sequence.Id);
        int blocksNeeded = allocator.BlocksFor(sequence.Tokens.Count) - allocator.BlockTable(sequence.Id).Count + 1; // +1: a copy-on-write
        if (blocksNeeded > allocator.FreeBlocks) return null;
        for (int i = have; i < sequence.Tokens.Count; i++)
        {
            allocator.TryAppend(sequence.Id, sequence.Tokens[i], out var copy);
            if (copy is not null) copies.Add(copy);
        }
        return sequence.Computed;
    }

    /// <summary>The prefix-cache salt: the model and the tenant, so no tenant ever reuses another's KV.</summary>
    /// A scoring request needs logits at every position, so it takes no cache hits (a salt of its own), as vLLM's prompt logprobs.
    private string Salt(EngineSequence sequence) => PrefixSalt(options.ModelName, sequence.Request.Request.TenantId)
        + (sequence.Request.Score is null ? "" : "\u0000score\u0000" + sequence.Id);

    public static string PrefixSalt(string model, string tenant) => model + "\u0000" + tenant;

    /// <summary>Gives the sequence's newest tokens their slots, preempting the youngest unplanned sequences when the pool is full.</summary>
    private static bool IsBeam(EngineSequence sequence) => sequence.Request.Request.Config.IsBeamSearch;

    private bool EnsureSlots(EngineSequence sequence, List<EngineSequence> unit, List<BlockAllocator.CopyOnWrite> copies, HashSet<EngineSequence> planned)
    {
        while (allocator.TokenCount(sequence.Id) < sequence.Tokens.Count)
        {
            int token = sequence.Tokens[allocator.TokenCount(sequence.Id)];
            if (allocator.TryAppend(sequence.Id, token, out var copy))
            {
                if (copy is not null) copies.Add(copy);
                continue;
            }
            if (releaseKeptSequence()) continue;
            // Beams are not preempted one by one (their siblings would wait on them); a beam unit waits instead.
            var victim = _running.Where(s => !planned.Contains(s) && !IsBeam(s) && (!IsBeam(sequence) || !unit.Contains(s))).MaxBy(s => s.Arrival);
            if (victim is null) return false;
            Preempt(victim);
            if (victim == sequence) return false;
        }
        return true;
    }

    /// <summary>Recompute later (vLLM's default): the blocks are freed (full ones stay cached) and the sequence waits first in line.</summary>
    private void Preempt(EngineSequence sequence)
    {
        _running.Remove(sequence);
        allocator.Free(sequence.Id);
        sequence.Computed = 0;
        Preemptions++;
        Enqueue(sequence, front: true);
    }

    /// <summary>Round-robin over tenants with waiting sequences and room under their cap; a tenant's weight is its admissions per turn.</summary>
    private (LinkedList<EngineSequence> Queue, EngineSequence Sequence)? NextWaiting()
    {
        for (int tried = 0; tried < _tenants.Count; tried++)
        {
            string tenant = _tenants[_turn % _tenants.Count];
            var queue = _waiting[tenant];
            bool underCap = options.MaxSequencesPerTenant is not { } cap || _running.Count(s => s.Request.Request.TenantId == tenant) < cap;
            if (queue.Count > 0 && underCap)
            {
                if (_creditsLeft <= 0) _creditsLeft = options.TenantWeights.GetValueOrDefault(tenant, 1);
                return (queue, queue.First!.Value);
            }
            NextTurn();
        }
        return null;
    }

    private void ConsumeCredit()
    {
        if (--_creditsLeft <= 0) NextTurn();
    }

    private void NextTurn()
    {
        _turn = (_turn + 1) % Math.Max(1, _tenants.Count);
        _creditsLeft = 0;
    }
}
