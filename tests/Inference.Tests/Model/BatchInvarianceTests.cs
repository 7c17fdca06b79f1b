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
        using var layer = new Conv1D(nf, nx, ScalarType.Float32, torch.CPU) { MinRows = BatchInvariantMatmul.KernelRows };
        torch.manual_seed(7);
        using (torch.no_grad())
        {
            layer.weight.copy_(torch.randn(nx, nf) * 0.02);
            layer.bias.copy_(torch.randn(nf) * 0.02);
        }
        var batch = torch.randn(64, nx);
        var together = layer.forward(batch);
        foreach (int rows in new[] { 1, 2, 5, 15, 16, 17, 40 })
        {
            var alone = layer.forward(batch.narrow(0, 0, rows));
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
}
