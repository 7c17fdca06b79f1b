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
        var ids = Json.Input(c, "input_ids")!;
        var expected = golden.Expected(c.GetProperty("expected").GetProperty("logits").GetString()!);
        using var result = model.forward(ids);
        double diff = TensorAssert.MaxDiff(expected, result.Logits);
        double scale = expected.abs().max().item<float>();
        double mean = (result.Logits.to(ScalarType.Float32) - expected).abs().mean().item<float>();
        output.WriteLine($"{dtype}: max |Δlogit| {diff:E2}, mean {mean:E2} (logits up to {scale:F1})");
        Assert.True(diff < maxAbs, $"{dtype}: max |Δ| {diff}");
        // The decode step (the bf16 matrix-vector kernel on CPU) agrees with the full forward pass.
        using var cache = new KeyValueCache(model.Config, ids.shape[0], 16, dtype, model.Device);
        using (model.forward(ids.narrow(1, 0, 7), cache: cache)) { }
        using var step = model.forward(ids.narrow(1, 7, 1), cache: cache);
        Assert.True(TensorAssert.MaxDiff(result.Logits.narrow(1, 7, 1), step.Logits) < maxAbs);
    }

    [SkippableFact]
    public void The_bf16_decode_kernel_matches_libtorch_linear()
    {
        using var scope = torch.NewDisposeScope();
        var weight = torch.randn(300, 96).to(ScalarType.BFloat16);
        var bias = torch.randn(300).to(ScalarType.BFloat16);
        foreach (int rows in new[] { 1, 3 })
        {
            var x = torch.randn(rows, 1, 96).to(ScalarType.BFloat16);
            Skip.IfNot(CpuMatVec.Applies(x, weight), "no AVX-512 here: libtorch serves these steps");
            var expected = nn.functional.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias.to(ScalarType.Float32));
            var actual = CpuMatVec.Apply(x, weight, bias);
            Assert.Equal(expected.shape, actual.shape);
            TensorAssert.Close(expected, actual, atol: 2e-2, rtol: 1e-2, what: $"rows {rows}"); // bf16 keeps 8 bits of mantissa
        }
    }
}
