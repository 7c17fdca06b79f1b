namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// Bookkeeping of a KV block pool, without tensors (vLLM's BlockPool and KVCacheManager): fixed-size blocks,
/// a block table per sequence, reference counts for blocks shared by forks and by prefix-cache hits, and a
/// content-addressed cache of full blocks. A block whose last reference goes away stays cached (its KV is still
/// valid) in a least-recently-used queue and is only evicted when a new block is needed. Accounting is exact:
/// every block is at any time used (referenced) or free, and some free blocks are cached.
/// Not thread-safe: the engine's loop owns it.
/// </summary>
internal sealed class BlockAllocator
{
    private sealed class Sequence(string salt)
    {
        public readonly List<int> Blocks = [];
        public readonly List<int> Tokens = [];
        public readonly string Salt = salt;
        public int CommittedBlocks; // full blocks whose hash is registered (their KV is computed)
    }

    private readonly int[] _refCount;
    private readonly BlockHash?[] _hashOf;
    private readonly LinkedList<int> _free = new();                 // head: evicted first
    private readonly LinkedListNode<int>?[] _freeNode;
    private readonly Dictionary<BlockHash, int> _cached = [];
    private readonly Dictionary<long, Sequence> _sequences = [];

    public int BlockSize { get; }
    public int TotalBlocks => _refCount.Length;
    public int FreeBlocks => _free.Count;
    public int UsedBlocks => TotalBlocks - FreeBlocks;
    /// <summary>Free blocks that still hold reusable KV (evictable).</summary>
    public int CachedFreeBlocks => _free.Count(b => _hashOf[b] is not null);
    public long PrefixQueries { get; private set; }
    public long PrefixHits { get; private set; }

    public BlockAllocator(int totalBlocks, int blockSize)
    {
        if (totalBlocks <= 0) throw new ArgumentOutOfRangeException(nameof(totalBlocks), "the pool needs at least one block");
        if (blockSize <= 0) throw new ArgumentOutOfRangeException(nameof(blockSize), "blocks hold at least one token");
        BlockSize = blockSize;
        _refCount = new int[totalBlocks];
        _hashOf = new BlockHash?[totalBlocks];
        _freeNode = new LinkedListNode<int>?[totalBlocks];
        for (int b = 0; b < totalBlocks; b++) _freeNode[b] = _free.AddLast(b);
    }

    public bool Contains(long sequence) => _sequences.ContainsKey(sequence);
    public IReadOnlyList<int> BlockTable(long sequence) => Get(sequence).Blocks;
    public int TokenCount(long sequence) => Get(sequence).Tokens.Count;
    public int RefCount(int block) => _refCount[block];

    /// <summary>The pool slot of every position [<paramref name="from"/>, <paramref name="length"/>) of a sequence.</summary>
    public long[] Slots(long sequence, int length, int from = 0)
    {
        var table = Get(sequence).Blocks;
        var slots = new long[length - from];
        for (int p = from; p < length; p++) slots[p - from] = (long)table[p / BlockSize] * BlockSize + p % BlockSize;
        return slots;
    }

    /// <summary>Blocks needed to hold <paramref name="tokens"/> tokens.</summary>
    public int BlocksFor(int tokens) => (tokens + BlockSize - 1) / BlockSize;

    /// <summary>
    /// Creates a sequence holding <paramref name="tokens"/>: full blocks of the prompt found in the cache (same salt,
    /// same tokens from the start) are shared; the rest are new. Returns the number of leading tokens whose KV is
    /// already computed, or null (and changes nothing) when the pool cannot hold the sequence.
    /// </summary>
    public int? TryAllocate(long sequence, IReadOnlyList<int> tokens, string salt)
    {
        if (_sequences.ContainsKey(sequence)) throw new InvalidOperationException($"sequence {sequence} already holds blocks");
        var hits = CachedPrefix(tokens, salt);
        // A prompt that is entirely cached still recomputes its last block (into a block of its own), as vLLM does:
        // the last token must run to produce the next logits, and shared KV is never rewritten.
        if (hits.Count > 0 && hits.Count * BlockSize == tokens.Count) hits.RemoveAt(hits.Count - 1);
        // A cache hit on a free block takes it out of the free queue, so it cannot also count as free space.
        int reusedFree = hits.Count(b => _refCount[b] == 0);
        int needed = BlocksFor(tokens.Count) - hits.Count;
        if (needed > FreeBlocks - reusedFree) return null;

        PrefixQueries += tokens.Count / BlockSize;
        PrefixHits += hits.Count;
        var seq = new Sequence(salt);
        foreach (var block in hits) Reference(block);
        seq.Blocks.AddRange(hits);
        seq.CommittedBlocks = hits.Count;
        for (int i = 0; i < needed; i++) seq.Blocks.Add(TakeFreeBlock());
        seq.Tokens.AddRange(tokens);
        _sequences[sequence] = seq;
        return hits.Count * BlockSize;
    }

    private List<int> CachedPrefix(IReadOnlyList<int> tokens, string salt)
    {
        var hits = new List<int>();
        BlockHash? parent = null;
        var span = tokens.ToArray();
        for (int start = 0; start + BlockSize <= span.Length; start += BlockSize)
        {
            var hash = BlockHash.Of(parent, span.AsSpan(start, BlockSize), salt);
            if (!_cached.TryGetValue(hash, out var block)) break;
            hits.Add(block);
            parent = hash;
        }
        return hits;
    }

    public sealed record CopyOnWrite(int Source, int Destination);

    /// <summary>
    /// Makes room for one more token at the end of the sequence. A shared last block that is not full is copied
    /// first (copy-on-write; the caller copies the KV from Source to Destination). False (nothing changed) when no
    /// block is free.
    /// </summary>
    public bool TryAppend(long sequence, int token, out CopyOnWrite? copy)
    {
        var seq = Get(sequence);
        copy = null;
        int position = seq.Tokens.Count;
        if (position % BlockSize == 0)
        {
            if (FreeBlocks == 0) return false;
            seq.Blocks.Add(TakeFreeBlock());
        }
        else if (_refCount[seq.Blocks[^1]] > 1)
        {
            if (FreeBlocks == 0) return false;
            int shared = seq.Blocks[^1];
            int own = TakeFreeBlock();
            Release(shared);
            seq.Blocks[^1] = own;
            copy = new CopyOnWrite(shared, own);
        }
        seq.Tokens.Add(token);
        return true;
    }

    /// <summary>
    /// Registers the full blocks among the first <paramref name="computedTokens"/> tokens (their KV is now written)
    /// in the prefix cache, so later sequences with the same prefix and salt reuse them.
    /// </summary>
    public void MarkComputed(long sequence, int computedTokens)
    {
        var seq = Get(sequence);
        int full = Math.Min(computedTokens, seq.Tokens.Count) / BlockSize;
        var tokens = seq.Tokens.ToArray();
        BlockHash? parent = seq.CommittedBlocks > 0 ? _hashOf[seq.Blocks[seq.CommittedBlocks - 1]] : null;
        for (int i = seq.CommittedBlocks; i < full; i++)
        {
            var hash = BlockHash.Of(parent, tokens.AsSpan(i * BlockSize, BlockSize), seq.Salt);
            int block = seq.Blocks[i];
            if (_hashOf[block] is null && !_cached.ContainsKey(hash))
            {
                _hashOf[block] = hash;
                _cached[hash] = block;
            }
            parent = hash;
        }
        seq.CommittedBlocks = Math.Max(seq.CommittedBlocks, full);
    }

    /// <summary>A new sequence sharing all of <paramref name="source"/>'s blocks (copy-on-write).</summary>
    public void Fork(long source, long child)
    {
        if (_sequences.ContainsKey(child)) throw new InvalidOperationException($"sequence {child} already holds blocks");
        var from = Get(source);
        var seq = new Sequence(from.Salt) { CommittedBlocks = from.CommittedBlocks };
        foreach (var block in from.Blocks) Reference(block);
        seq.Blocks.AddRange(from.Blocks);
        seq.Tokens.AddRange(from.Tokens);
        _sequences[child] = seq;
    }

    /// <summary>Drops the sequence: its blocks lose a reference; unreferenced ones return to the free queue (cached ones keep their KV).</summary>
    public void Free(long sequence)
    {
        if (!_sequences.Remove(sequence, out var seq)) return;
        // Last blocks first, so the tail of a prompt (least likely shared) is evicted before its head.
        for (int i = seq.Blocks.Count - 1; i >= 0; i--) Release(seq.Blocks[i]);
    }

    private void Reference(int block)
    {
        if (_refCount[block]++ == 0)
        {
            _free.Remove(_freeNode[block]!);
            _freeNode[block] = null;
        }
    }

    private void Release(int block)
    {
        if (--_refCount[block] > 0) return;
        _freeNode[block] = _free.AddLast(block);
    }

    /// <summary>The least recently freed block; if it held cached KV, that cache entry is evicted.</summary>
    private int TakeFreeBlock()
    {
        int block = _free.First!.Value;
        _free.RemoveFirst();
        _freeNode[block] = null;
        if (_hashOf[block] is { } hash)
        {
            _cached.Remove(hash);
            _hashOf[block] = null;
        }
        _refCount[block] = 1;
        return block;
    }

    private Sequence Get(long sequence) =>
        _sequences.TryGetValue(sequence, out var seq) ? seq : throw new KeyNotFoundException($"sequence {sequence} holds no blocks");
}
