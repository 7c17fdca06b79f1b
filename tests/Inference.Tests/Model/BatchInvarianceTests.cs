using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Model;

/// <summary>
/// In batch-invariant mode a row's result does not depend on how many rows share the multiply, bit for bit, at
/// GPT-2 small's sizes: the engine batches requests, and a seeded sample must come out the same alone or under load.
/// </summary>
public sealed class BatchInvarianceTests
{
    private static bool Same(Tensor a, Tensor b) => torch.eq(a, b).all().item<bool>();

    [Theory]
    [InlineData(768, 2304)]
    [InlineData(768, 3072)]
    [InlineData(3072, 768)]
    [InlineData(32, 96)]
    public void A_row_alone_equals_the_same_row_in_a_batch_bit_for_bit(int nx, int nf)
    {
        using var scope = torch.NewDisposeScope();
        using var layer = new Conv1D(nf, nx, ScalarType.Float32, torch.CPU);
        var policy = new KernelPolicy(BatchInvariant: true, MatVecKernel: true);
        torch.manual_seed(7);
        using (torch.no_grad())
        {
            layer.weight!.copy_(torch.randn(nx, nf) * 0.02);
            layer.bias.copy_(torch.randn(nf) * 0.02);
        }
        var batch = torch.randn(64, nx);
        var together = layer.forward(batch, policy);
        foreach (int rows in new[] { 1, 2, 5, 15, 16, 17, 40 })
        {
            var alone = layer.forward(batch.narrow(0, 0, rows), policy);
            Assert.True(Same(alone, together.narrow(0, 0, rows)), $"{rows} row(s) differ from the same rows among 64 (max |Δ| {(alone - together.narrow(0, 0, rows)).abs().max().item<float>()})");
        }
    }

    [Fact]
    public void The_lm_head_gives_a_row_alone_what_it_gives_it_in_a_batch()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var weight = torch.randn(50257, 768) * 0.02;
        var batch = torch.randn(32, 1, 768);
        var together = BatchInvariantMatmul.Linear(batch, weight, BatchInvariantMatmul.KernelRows);
        var alone = BatchInvariantMatmul.Linear(batch.narrow(0, 0, 1), weight, BatchInvariantMatmul.KernelRows);
        Assert.Equal([1L, 1, 50257], alone.shape);
        Assert.True(Same(alone, together.narrow(0, 0, 1)));
    }

    /// <summary>
    /// The whole paged forward, decode included: a sequence's next-token logits are the same bit for bit alone and
    /// beside 1 to 63 other decoding sequences of other lengths, at any position in the batch (on CPUs without
    /// AVX2 too, where attention takes libtorch's path instead of our kernel).
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("int8")] // quantized weights: dequantized for libtorch's padded product, never the integer kernel
    [InlineData("int4")]
    [InlineData("nf4")]
    public void A_decoding_sequence_gets_the_same_logits_alone_and_beside_others(string? quantize)
    {
        using var lm = Gpt2LMHeadModel.FromPretrained(Support.GoldenData.ModelDir("lm"),
            new ModelLoadOptions { Quantization = Inference.Quantization.QuantizationConfig.Parse(quantize) });
        var policy = new KernelPolicy(BatchInvariant: true, MatVecKernel: true);
        int[] target = [464, 1266, 835, 284, 2681, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25];
        Tensor Decode(int others, int position)
        {
            using var scope = torch.NewDisposeScope();
            using var pool = new Inference.KvCache.KvBlockPool(lm.Config, 512, 16, lm.DType, lm.Device);
            var allocator = new Inference.KvCache.BlockAllocator(512, 16);
            var all = Enumerable.Range(0, others + 1)
                .Select(s => s == position ? target : Enumerable.Range(0, 5 + s % 17).Select(i => 1000 + 31 * s + i).ToArray()).ToArray();
            for (int s = 0; s <= others; s++) // every prompt but its last token, each prefilled alone
            {
                var prompt = all[s][..^1];
                allocator.TryAllocate(s, prompt, "t");
                using var prefill = new Inference.KvCache.PagedBatch(pool, allocator, [new Inference.KvCache.PagedSequence(s, 0, prompt.Length, 0)]);
                lm.forwardPaged(torch.tensor(prompt.Select(t => (long)t).ToArray()), prefill, pool, [prompt.Length - 1L], policy).Dispose();
            }
            var parts = new List<Inference.KvCache.PagedSequence>();
            for (int s = 0; s <= others; s++)
            {
                allocator.TryAppend(s, all[s][^1], out _);
                parts.Add(new Inference.KvCache.PagedSequence(s, s, 1, all[s].Length - 1));
            }
            using var decode = new Inference.KvCache.PagedBatch(pool, allocator, parts);
            var logits = lm.forwardPaged(torch.tensor(all.Select(a => (long)a[^1]).ToArray()), decode, pool, Enumerable.Range(0, others + 1).Select(i => (long)i).ToArray(), policy);
            return logits.narrow(0, position, 1).clone().MoveToOuterDisposeScope();
        }
        using var alone = Decode(0, 0);
        foreach (int others in new[] { 1, 3, 15, 16, 63 })
            foreach (int position in new[] { 0, others / 2, others })
            {
                using var batched = Decode(others, position);
                Assert.True(Same(alone, batched), $"alone vs beside {others} others at position {position}");
            }
    }
}
