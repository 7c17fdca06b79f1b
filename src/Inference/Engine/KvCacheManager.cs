using Gpt2Orleans.Inference.KvCache;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// The only owner of KV blocks (vLLM v1's KVCacheManager): the block allocator with its prefix cache, the slots of
/// running sequences, forks, the frees of preemption, and <em>kept conversations</em>: a finished sequence whose KV
/// stays for its next turn, filed under its owner's key (a session's grain key), never under an id that leaves the
/// engine. Continue, fork from another owner, release, export and import are by that key, so nothing outside can
/// hold a stale handle: a turn that never comes back simply leaves its owner's entry to be replaced or evicted.
/// Plain bookkeeping without tensors (the pool is passed in where K/V are copied); not thread-safe: the engine's
/// loop owns it.
/// </summary>
internal sealed class KvCacheManager(int blocks, int blockSize, string modelName)
{
    /// <summary>A finished conversation whose KV stays in the pool for its next turn.</summary>
    private sealed record Kept(string Tenant, long Sequence, int[] Tokens, int Computed, long LastUsed);

    private readonly Dictionary<string, Kept> _kept = [];
    private readonly List<string> _evicted = [];
    private long _clock;

    public BlockAllocator Allocator { get; } = new(blocks, blockSize);
    public int KeptCount => _kept.Count;
    public long KeptTokens => _kept.Values.Sum(k => (long)k.Tokens.Length);

    /// <summary>The prefix-cache salt: the model and the tenant, so no tenant ever reuses another's KV.</summary>
    public string Salt(string tenant) => modelName + "\u0000" + tenant;

    /// <summary>
    /// Slots for a new sequence's tokens, sharing the cached full blocks of its prefix; the number of tokens whose KV
    /// is already computed, or null (nothing changed) when the pool cannot hold it now. A scoring sequence needs
    /// logits at every position, so it takes no cache hits (a salt of its own), as vLLM's prompt logprobs.
    /// </summary>
    public int? Allocate(long sequence, IReadOnlyList<int> tokens, string tenant, bool scoring) =>
        Allocator.TryAllocate(sequence, tokens, Salt(tenant) + (scoring ? "\u0000score\u0000" + sequence : ""));

    /// <summary>
    /// Slots for a sequence's tokens beyond those it holds (its next token, or a continued conversation's new turn),
    /// recording the copy-on-write copies to make; false (partly extended, never over-committed) when a block is missing.
    /// </summary>
    public bool TryExtend(long sequence, IReadOnlyList<int> tokens, List<BlockAllocator.CopyOnWrite> copies)
    {
        while (Allocator.TokenCount(sequence) < tokens.Count)
        {
            if (!Allocator.TryAppend(sequence, tokens[Allocator.TokenCount(sequence)], out var copy)) return false;
            if (copy is not null) copies.Add(copy);
        }
        return true;
    }

    /// <summary>Whether extending <paramref name="sequence"/> to <paramref name="tokens"/> tokens fits in the free blocks now.</summary>
    public bool CanExtend(long sequence, int tokens) =>
        Allocator.BlocksFor(tokens) - Allocator.BlockTable(sequence).Count + 1 <= Allocator.FreeBlocks; // +1: a copy-on-write

    public bool Holds(long sequence) => Allocator.Contains(sequence);
    public void Fork(long source, long child) => Allocator.Fork(source, child);
    public void Free(long sequence) => Allocator.Free(sequence);
    public void MarkComputed(long sequence, int computed) => Allocator.MarkComputed(sequence, computed);

    /// <summary>
    /// Keeps a finished sequence's KV under <paramref name="owner"/>, replacing (and freeing) what it kept before. Owner
    /// keys are meant to be unique across tenants (a session's key holds its tenant); should another tenant name an
    /// owner that is kept, its sequence is freed instead, so no tenant can touch another's conversation.
    /// </summary>
    public void Keep(string owner, string tenant, long sequence, IReadOnlyList<int> tokens, int computed)
    {
        if (_kept.TryGetValue(owner, out var other) && other.Tenant != tenant)
        {
            Allocator.Free(sequence);
            return;
        }
        Release(owner);
        _kept[owner] = new Kept(tenant, sequence, [.. tokens], computed, ++_clock);
    }

    /// <summary>
    /// The owner's kept KV taken over by its next turn, when it is the tenant's and its tokens start the prompt:
    /// the sequence id that holds it and how many prompt tokens need no computing. A kept entry that does not start
    /// the prompt is stale (the turn that made it was never committed) and is freed.
    /// </summary>
    public (long Sequence, int Computed)? Continue(string owner, string tenant, IReadOnlyList<int> prompt)
    {
        if (!_kept.TryGetValue(owner, out var kept) || kept.Tenant != tenant) return null;
        _kept.Remove(owner);
        if (!Starts(kept, tenant, prompt))
        {
            Allocator.Free(kept.Sequence);
            return null;
        }
        return (kept.Sequence, Math.Min(kept.Computed, prompt.Count - 1));
    }

    /// <summary>Another owner's kept KV shared copy-on-write by <paramref name="child"/> (it stays kept); the tokens that need no computing.</summary>
    public int? ForkFrom(string owner, string tenant, IReadOnlyList<int> prompt, long child)
    {
        if (!_kept.TryGetValue(owner, out var kept) || !Starts(kept, tenant, prompt)) return null;
        Allocator.Fork(kept.Sequence, child);
        _kept[owner] = kept with { LastUsed = ++_clock };
        return Math.Min(kept.Computed, prompt.Count - 1);
    }

    private static bool Starts(Kept kept, string tenant, IReadOnlyList<int> prompt) =>
        kept.Tenant == tenant && kept.Tokens.Length <= prompt.Count && kept.Tokens.AsSpan().SequenceEqual(prompt.Take(kept.Tokens.Length).ToArray());

    /// <summary>Drops an owner's kept KV (its full blocks stay in the prefix cache until memory is needed).</summary>
    public bool Release(string owner)
    {
        if (!_kept.Remove(owner, out var kept)) return false;
        Allocator.Free(kept.Sequence);
        return true;
    }

    /// <summary>Under memory pressure the least recently used kept conversation goes first (before any running sequence).</summary>
    public string? EvictLeastRecentlyUsed()
    {
        if (_kept.Count == 0) return null;
        var oldest = _kept.MinBy(k => k.Value.LastUsed).Key;
        Release(oldest);
        _evicted.Add(oldest);
        return oldest;
    }

    /// <summary>The owners whose kept KV was evicted since the last call (the engine logs them).</summary>
    public IReadOnlyList<string> TakeEvicted()
    {
        if (_evicted.Count == 0) return [];
        var evicted = _evicted.ToList();
        _evicted.Clear();
        return evicted;
    }

    /// <summary>An owner's kept KV and tokens copied out of <paramref name="pool"/> (to spill it), or null when nothing is kept.</summary>
    public KvSnapshot? Export(string owner, KvBlockPool pool) =>
        _kept.TryGetValue(owner, out var kept) ? pool.Snapshot(Allocator.Slots(kept.Sequence, kept.Computed), kept.Tokens, kept.Computed) : null;

    /// <summary>Every kept conversation copied out (a draining silo spills them all), by owner.</summary>
    public IReadOnlyList<(string Owner, KvSnapshot Snapshot)> ExportAll(KvBlockPool pool) =>
        _kept.Keys.ToList().Select(owner => (owner, Export(owner, pool)!)).ToList();

    /// <summary>
    /// Keeps a snapshot's conversation under <paramref name="owner"/> (blocks the prefix cache already holds are shared,
    /// the rest written from the snapshot); false when the pool has no room for it now.
    /// </summary>
    public bool Import(string owner, string tenant, KvSnapshot snapshot, long sequence, KvBlockPool pool)
    {
        if (Allocator.TryAllocate(sequence, snapshot.Tokens, Salt(tenant)) is not { } cached) return false;
        try
        {
            int from = Math.Min(cached, snapshot.Computed);
            pool.Restore(Allocator.Slots(sequence, snapshot.Computed, from), snapshot, from);
        }
        catch
        {
            Allocator.Free(sequence);
            throw;
        }
        Allocator.MarkComputed(sequence, snapshot.Computed);
        Keep(owner, tenant, sequence, snapshot.Tokens, snapshot.Computed);
        return true;
    }
}
