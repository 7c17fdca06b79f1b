using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Model;

[Collection(GoldenCollection.Name)]
public sealed class ReducedPrecisionTests(GoldenData golden, ITestOutputHelper output)
{
    /// <summary>Loads the golden LM in bf16 and fp16 and measures the logits error against HF's float32 logits.</summary>
    [Theory]
    [InlineData(ScalarType.BFloat16, 0.25)]
    [InlineData(ScalarType.Float16, 0.05)]
    public void Reduced_precision_stays_close_to_float32(ScalarType dtype, double maxAbs)
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case("forward_nopad");
        using var model = Gpt2LMHeadModel.FromPretrained(GoldenData.ModelDir("lm"), new ModelLoadOptions { DType = dtype });
        var ids = GoldenJson.Input(c, "input_ids")!;
        var expected = golden.Expected(c.GetProperty("expected").GetProperty("logits").GetString()!);
        using var result = model.forward(ids);
        double diff = TensorAssert.MaxDiff(expected, result.Logits);
        double scale = expected.abs().max().item<float>();
        double mean = (result.Logits.to(ScalarType.Float32) - expected).abs().mean().item<float>();
        output.WriteLine($"{dtype}: max |Δlogit| {diff:E2}, mean {mean:E2} (logits up to {scale:F1})");
        Assert.True(diff < maxAbs, $"{dtype}: max |Δ| {diff}");
        // A decode step through the dense cache agrees with the full forward pass.
        using var cache = new KeyValueCache(model.Config, ids.shape[0], 16, dtype, model.Device);
        using (model.forward(ids.narrow(1, 0, 7), cache: cache)) { }
        using var step = model.forward(ids.narrow(1, 7, 1), cache: cache);
        Assert.True(TensorAssert.MaxDiff(result.Logits.narrow(1, 7, 1), step.Logits) < maxAbs);
        // So does the engine's paged decode step (our mat-vec and paged-attention kernels where the CPU has them).
        using var pool = new Inference.KvCache.KvBlockPool(model.Config, 8, 16, dtype, model.Device);
        var allocator = new Inference.KvCache.BlockAllocator(8, 16);
        var tokens = Enumerable.Range(0, 8).Select(i => ids[0, i].item<long>()).ToArray();
        allocator.TryAllocate(1, tokens[..7].Select(t => (int)t).ToArray(), "t");
        using (var prefill = new Inference.KvCache.PagedBatch(pool, allocator, [new Inference.KvCache.PagedSequence(1, 0, 7, 0)]))
            model.forwardPaged(torch.tensor(tokens[..7]), prefill, pool, [6L]).Dispose();
        allocator.MarkComputed(1, 7);
        allocator.TryAppend(1, (int)tokens[7], out _);
        using var decode = new Inference.KvCache.PagedBatch(pool, allocator, [new Inference.KvCache.PagedSequence(1, 0, 1, 7)]);
        using var paged = model.forwardPaged(torch.tensor(tokens[7..]), decode, pool, [0L]);
        Assert.True(TensorAssert.MaxDiff(result.Logits[0, 7].unsqueeze(0), paged) < maxAbs, $"{dtype}: paged decode step");
    }

    [Fact]
    public void Reading_bf16_memory_widens_every_value_as_libtorch_does()
    {
        using var scope = torch.NewDisposeScope();
        // 37 values: two vectors of sixteen and a tail; infinities, NaN, a subnormal, negative zero among them.
        var values = torch.randn(37).mul(100);
        values[3] = float.PositiveInfinity; values[17] = float.NegativeInfinity; values[20] = float.NaN;
        values[33] = 1e-40f; values[35] = -0f;
        var bf16 = values.to(ScalarType.BFloat16);
        var read = new float[37];
        CpuMatVec.ReadFloat32(bf16, read);
        var expected = bf16.to(ScalarType.Float32).data<float>().ToArray();
        for (int i = 0; i < read.Length; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(read[i]));
    }

    [SkippableTheory]
    [InlineData(ScalarType.BFloat16, 2e-2, 1e-2)] // bf16 keeps 8 bits of mantissa
    [InlineData(ScalarType.Float32, 1e-5, 1e-5)]
    public void The_decode_kernel_matches_libtorch_linear(ScalarType dtype, double atol, double rtol)
    {
        using var scope = torch.NewDisposeScope();
        var weight = torch.randn(301, 96).to(dtype); // 301: four-row passes and a one-row tail
        var bias = torch.randn(301).to(dtype);
        foreach (int rows in new[] { 1, 2, 3, CpuMatVec.MaxRows })
        {
            var x = torch.randn(rows, 1, 96).to(dtype);
            Skip.IfNot(CpuMatVec.Applies(x, weight), "no AVX2 + FMA here: libtorch serves these steps");
            var expected = nn.functional.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias.to(ScalarType.Float32));
            var actual = CpuMatVec.Apply(x, weight, bias);
            Assert.Equal(expected.shape, actual.shape);
            Assert.Equal(dtype, actual.dtype);
            TensorAssert.Close(expected, actual.to(ScalarType.Float32), atol: atol, rtol: rtol, what: $"rows {rows}");
        }
    }

    /// <summary>Each output is one fixed sum of its own row: a row's result is the same bit for bit alone or among up to MaxRows rows.</summary>
    [SkippableTheory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float32)]
    public void The_decode_kernel_gives_a_row_the_same_bits_alone_and_among_others(ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var weight = torch.randn(2304, 768).to(dtype);
        var batch = torch.randn(CpuMatVec.MaxRows, 768).to(dtype);
        Skip.IfNot(CpuMatVec.Applies(batch, weight), "no AVX2 + FMA here: libtorch serves these steps");
        var together = CpuMatVec.Apply(batch, weight, null);
        for (int rows = 1; rows < CpuMatVec.MaxRows; rows++)
        {
            var alone = CpuMatVec.Apply(batch.narrow(0, 0, rows), weight, null);
            Assert.True(torch.equal(alone, together.narrow(0, 0, rows)).all().item<bool>(), $"{rows} row(s) differ from the same rows among {CpuMatVec.MaxRows}");
        }
    }
}
