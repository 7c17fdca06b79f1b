using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.KvCache;

/// <summary>A paged forward pass (flat batch of several sequences, K/V through block tables) equals the plain forward pass.</summary>
[Collection(GoldenCollection.Name)]
public sealed class PagedForwardTests(GoldenData golden)
{
    private const int BlockSize = 4;
    private Gpt2LMHeadModel Model => golden.Lm();

    /// <summary>The pool's tensors and the allocator's bookkeeping of them (the engine's KV-cache manager owns the latter).</summary>
    private sealed class Pool(KvBlockPool tensors, BlockAllocator allocator) : IDisposable
    {
        public KvBlockPool Tensors { get; } = tensors;
        public BlockAllocator Allocator { get; } = allocator;
        public void CopyBlock(int source, int destination) => Tensors.CopyBlock(source, destination);
        public void Dispose() => Tensors.Dispose();
    }

    private Pool NewPool(int blocks = 64) => new(new KvBlockPool(Model.Config, blocks, BlockSize, Model.DType, Model.Device), new BlockAllocator(blocks, BlockSize));

    /// <summary>Logits of the plain forward pass at every position of <paramref name="tokens"/> (T, V).</summary>
    private Tensor Reference(IReadOnlyList<int> tokens)
    {
        using var output = Model.forward(torch.tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Count]));
        return output.Logits[0].clone();
    }

    /// <summary>Runs one paged step: each (sequence, new tokens) pair contributes its tokens; returns each one's last logits.</summary>
    private Tensor Step(Pool pool, params (long Id, int[] NewTokens, int Context)[] parts)
    {
        var sequences = new List<PagedSequence>();
        var ids = new List<long>();
        foreach (var (id, tokens, context) in parts)
        {
            sequences.Add(new PagedSequence(id, ids.Count, tokens.Length, context));
            ids.AddRange(tokens.Select(t => (long)t));
        }
        using var batch = new PagedBatch(pool.Tensors, pool.Allocator, sequences);
        var rows = sequences.Select(s => (long)(s.QueryStart + s.QueryLength - 1)).ToArray();
        var logits = Model.forwardPaged(torch.tensor(ids.ToArray()), batch, pool.Tensors, rows);
        foreach (var (id, tokens, context) in parts) pool.Allocator.MarkComputed(id, context + tokens.Length);
        return logits;
    }

    private static readonly int[] PromptA = [464, 3616, 286, 1204, 318, 257, 1310, 9379, 508];
    private static readonly int[] PromptB = [7454, 2402, 257, 640, 612, 373];

    [Fact]
    public void Prefill_of_several_sequences_in_one_flat_batch_then_batched_decode_equals_the_plain_forward()
    {
        using var scope = torch.NewDisposeScope();
        using var pool = NewPool();
        pool.Allocator.TryAllocate(1, PromptA, "t");
        pool.Allocator.TryAllocate(2, PromptB, "t");
        var prefill = Step(pool, (1, PromptA, 0), (2, PromptB, 0));
        TensorAssert.Close(Reference(PromptA)[^1], prefill[0], 1e-5, 1e-5, what: "A prefill");
        TensorAssert.Close(Reference(PromptB)[^1], prefill[1], 1e-5, 1e-5, what: "B prefill");

        List<int> a = [.. PromptA], b = [.. PromptB];
        for (int step = 0; step < 5; step++)
        {
            int nextA = 100 + step, nextB = 200 + step;
            pool.Allocator.TryAppend(1, nextA, out _);
            pool.Allocator.TryAppend(2, nextB, out _);
            var decoded = Step(pool, (1, [nextA], a.Count), (2, [nextB], b.Count));
            a.Add(nextA); b.Add(nextB);
            TensorAssert.Close(Reference(a)[^1], decoded[0], 1e-5, 1e-5, what: $"A step {step}");
            TensorAssert.Close(Reference(b)[^1], decoded[1], 1e-5, 1e-5, what: $"B step {step}");
        }
    }

    [Fact]
    public void Chunked_prefill_equals_one_prefill()
    {
        using var scope = torch.NewDisposeScope();
        using var pool = NewPool();
        pool.Allocator.TryAllocate(1, PromptA, "t");
        Step(pool, (1, PromptA[..5], 0));
        var last = Step(pool, (1, PromptA[5..], 5));
        TensorAssert.Close(Reference(PromptA)[^1], last[0], 1e-5, 1e-5);
    }

    [Fact]
    public void A_prefix_cache_hit_prefills_only_the_rest_and_gives_the_same_logits()
    {
        using var scope = torch.NewDisposeScope();
        using var pool = NewPool();
        pool.Allocator.TryAllocate(1, PromptA, "t");
        Step(pool, (1, PromptA, 0));
        int[] follow = [.. PromptA[..8], 11, 290, 262];
        int computed = pool.Allocator.TryAllocate(2, follow, "t")!.Value;
        Assert.Equal(8, computed);
        var logits = Step(pool, (2, follow[computed..], computed));
        TensorAssert.Close(Reference(follow)[^1], logits[0], 1e-5, 1e-5);
    }

    [Fact]
    public void A_fork_continues_independently_with_copy_on_write()
    {
        using var scope = torch.NewDisposeScope();
        using var pool = NewPool();
        pool.Allocator.TryAllocate(1, PromptB, "t");
        Step(pool, (1, PromptB, 0));
        pool.Allocator.Fork(1, 2);
        foreach (var (id, token) in new[] { (1L, 11), (2L, 12) })
            if (pool.Allocator.TryAppend(id, token, out var copy) && copy is not null) pool.CopyBlock(copy.Source, copy.Destination);
        var logits = Step(pool, (1, [11], PromptB.Length), (2, [12], PromptB.Length));
        TensorAssert.Close(Reference([.. PromptB, 11])[^1], logits[0], 1e-5, 1e-5, what: "original");
        TensorAssert.Close(Reference([.. PromptB, 12])[^1], logits[1], 1e-5, 1e-5, what: "fork");
    }
}
