using CsCheck;
using Gpt2Orleans.Inference.KvCache;

namespace Gpt2Orleans.Inference.Tests.KvCache;

public sealed class BlockAllocatorTests
{
    private static int[] Tokens(int count, int start = 0) => Enumerable.Range(start, count).ToArray();

    [Fact]
    public void Blocks_are_accounted_exactly()
    {
        var pool = new BlockAllocator(totalBlocks: 10, blockSize: 4);
        Assert.Equal(0, pool.TryAllocate(1, Tokens(9), "t"));
        Assert.Equal(3, pool.BlockTable(1).Count);
        Assert.Equal((3, 7), (pool.UsedBlocks, pool.FreeBlocks));
        Assert.True(pool.TryAppend(1, 99, out var copy));
        Assert.Null(copy);
        Assert.Equal(3, pool.BlockTable(1).Count); // the 10th token fits in the third block
        pool.Free(1);
        Assert.Equal((0, 10), (pool.UsedBlocks, pool.FreeBlocks));
    }

    [Fact]
    public void A_computed_prefix_is_reused_by_the_same_salt_only()
    {
        var pool = new BlockAllocator(10, 4);
        pool.TryAllocate(1, Tokens(12), "tenant-a");
        pool.MarkComputed(1, 12);
        var prompt = Tokens(8).Concat([500, 501, 502]).ToArray();

        Assert.Equal(8, pool.TryAllocate(2, prompt, "tenant-a"));
        Assert.Equal(pool.BlockTable(1).Take(2), pool.BlockTable(2).Take(2));
        Assert.Equal(2, pool.RefCount(pool.BlockTable(1)[0]));

        Assert.Equal(0, pool.TryAllocate(3, prompt, "tenant-b"));
        Assert.Empty(pool.BlockTable(3).Intersect(pool.BlockTable(1)));
    }

    [Fact]
    public void Uncomputed_blocks_are_not_shared()
    {
        var pool = new BlockAllocator(10, 4);
        pool.TryAllocate(1, Tokens(12), "t");           // allocated, KV not yet written
        Assert.Equal(0, pool.TryAllocate(2, Tokens(12), "t"));
    }

    [Fact]
    public void A_fully_cached_prompt_recomputes_its_last_block_into_a_block_of_its_own()
    {
        var pool = new BlockAllocator(10, 4);
        pool.TryAllocate(1, Tokens(8), "t");
        pool.MarkComputed(1, 8);
        Assert.Equal(4, pool.TryAllocate(2, Tokens(8), "t"));
        Assert.Equal(pool.BlockTable(1)[0], pool.BlockTable(2)[0]);
        Assert.NotEqual(pool.BlockTable(1)[1], pool.BlockTable(2)[1]);
    }

    [Fact]
    public void Freed_cached_blocks_keep_their_kv_until_memory_is_needed_then_go_least_recently_used_first()
    {
        var pool = new BlockAllocator(7, 4);
        pool.TryAllocate(1, Tokens(8), "t");
        pool.MarkComputed(1, 8);
        pool.Free(1);
        Assert.Equal((7, 2), (pool.FreeBlocks, pool.CachedFreeBlocks));

        pool.TryAllocate(2, Tokens(16, 1000), "t");      // takes 4 of the 5 never-cached blocks first
        Assert.Equal(2, pool.CachedFreeBlocks);
        Assert.Equal(8, pool.TryAllocate(3, Tokens(8).Append(7).ToArray(), "t")); // the cached prefix is still there
        pool.Free(3);
        pool.Free(2);

        pool.TryAllocate(4, Tokens(24, 2000), "t");      // needs 6 of 7 blocks: the least recently used cache goes
        Assert.Equal(0, pool.CachedFreeBlocks);
        pool.Free(4);
        Assert.Equal(0, pool.TryAllocate(5, Tokens(8).Append(7).ToArray(), "t"));
    }

    [Fact]
    public void An_exhausted_pool_refuses_without_changing_anything()
    {
        var pool = new BlockAllocator(2, 4);
        Assert.NotNull(pool.TryAllocate(1, Tokens(8), "t"));
        Assert.Null(pool.TryAllocate(2, Tokens(1), "t"));
        Assert.False(pool.Contains(2));
        Assert.False(pool.TryAppend(1, 5, out _));
        Assert.Equal(8, pool.TokenCount(1));
        Assert.Equal((2, 0), (pool.UsedBlocks, pool.FreeBlocks));
    }

    [Fact]
    public void A_fork_shares_blocks_and_copies_a_partial_block_only_when_written()
    {
        var pool = new BlockAllocator(10, 4);
        pool.TryAllocate(1, Tokens(6), "t");
        pool.Fork(1, 2);
        Assert.Equal(pool.BlockTable(1), pool.BlockTable(2));
        Assert.Equal(2, pool.UsedBlocks);

        Assert.True(pool.TryAppend(2, 42, out var copy));
        Assert.NotNull(copy);
        Assert.Equal(pool.BlockTable(1)[1], copy!.Source);
        Assert.Equal(pool.BlockTable(2)[1], copy.Destination);
        Assert.Equal(pool.BlockTable(1)[0], pool.BlockTable(2)[0]);
        Assert.Equal(3, pool.UsedBlocks);

        Assert.True(pool.TryAppend(1, 43, out var none));
        Assert.Null(none); // the original now owns its last block alone
    }

    /// <summary>Any interleaving of allocations, appends, forks, commits and frees keeps the books exact.</summary>
    [Fact]
    public void Random_operation_sequences_keep_the_accounting_exact()
    {
        var operation = Gen.Select(Gen.Int[0, 4], Gen.Int[0, 40], Gen.Int[0, 3], Gen.Int[0, 9]);
        Gen.Select(Gen.Int[1, 24], Gen.Int[1, 8], operation.Array[1, 80]).Sample((blocks, blockSize, operations) =>
        {
            var pool = new BlockAllocator(blocks, blockSize);
            var live = new List<long>();
            long next = 0;
            foreach (var (kind, length, alphabet, pick) in operations)
            {
                long target = live.Count > 0 ? live[pick % live.Count] : -1;
                switch (kind)
                {
                    case 0:
                        // A small alphabet makes shared prefixes (and cache hits) common.
                        var tokens = Enumerable.Range(0, length + 1).Select(i => (i * 7 + alphabet) % (alphabet + 2)).ToArray();
                        if (pool.TryAllocate(next, tokens, $"salt{alphabet % 2}") is { } computed)
                        {
                            Assert.True(computed < tokens.Length && computed % blockSize == 0);
                            live.Add(next);
                        }
                        next++;
                        break;
                    case 1 when target >= 0: pool.TryAppend(target, length, out _); break;
                    case 2 when target >= 0: pool.MarkComputed(target, pool.TokenCount(target)); break;
                    case 3 when target >= 0: pool.Fork(target, next); live.Add(next++); break;
                    case 4 when target >= 0: pool.Free(target); live.Remove(target); break;
                }
                long references = 0;
                for (int b = 0; b < blocks; b++) references += pool.RefCount(b);
                Assert.Equal(live.Sum(s => (long)pool.BlockTable(s).Count), references);
                Assert.Equal(blocks, pool.UsedBlocks + pool.FreeBlocks);
                Assert.Equal(Enumerable.Range(0, blocks).Count(b => pool.RefCount(b) > 0), pool.UsedBlocks);
                foreach (var s in live) Assert.Equal(pool.BlocksFor(pool.TokenCount(s)), pool.BlockTable(s).Count);
            }
            foreach (var s in live) pool.Free(s);
            Assert.Equal(blocks, pool.FreeBlocks);
        }, iter: 300);
    }
}
