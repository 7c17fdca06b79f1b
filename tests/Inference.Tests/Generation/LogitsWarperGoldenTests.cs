using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Generation;

[Collection(GoldenCollection.Name)]
public sealed class LogitsWarperGoldenTests(GoldenData golden)
{
    private static readonly IReadOnlyList<IReadOnlyList<int>> NoIds = [[]];

    public static TheoryData<string, string> Cases() => new()
    {
        { "warpers", "log_softmax" }, { "warpers", "temperature_0.7" }, { "warpers", "top_k_50" }, { "warpers", "top_p_0.9" },
        { "warpers", "temperature_0.7+top_k_50+top_p_0.9" },
        { "warpers_sharp", "log_softmax" }, { "warpers_sharp", "temperature_0.7" }, { "warpers_sharp", "top_k_50" },
        { "warpers_sharp", "top_p_0.9" }, { "warpers_sharp", "temperature_0.7+top_k_50+top_p_0.9" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Warped_distributions_match_hf_including_which_tokens_are_filtered(string id, string warper)
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case(id);
        var expectedNames = c.GetProperty("expected");
        var input = golden.Expected(expectedNames.GetProperty("input_logits").GetString()!);
        var chain = warper switch
        {
            "log_softmax" => [],
            "temperature_0.7" => [new TemperatureLogitsWarper(0.7)],
            "top_k_50" => [new TopKLogitsWarper(50)],
            "top_p_0.9" => [new TopPLogitsWarper(0.9)],
            _ => new ILogitsProcessor[] { new TemperatureLogitsWarper(0.7), new TopKLogitsWarper(50), new TopPLogitsWarper(0.9) },
        };
        var scores = input.clone();
        foreach (var w in chain) scores = w.Process(NoIds, scores);
        var actual = scores.log_softmax(-1);
        var expected = golden.Expected(expectedNames.GetProperty(warper).GetString()!);

        var expectedFiltered = expected.isinf();
        Assert.True(expectedFiltered.eq(actual.isinf()).all().item<bool>(), $"{id}/{warper}: filtered tokens differ " +
            $"(HF keeps {expectedFiltered.logical_not().sum().item<long>()}, we keep {actual.isinf().logical_not().sum().item<long>()})");
        double atol = id == "warpers_sharp" ? 5e-4 : 1e-4;
        var finite = expectedFiltered.logical_not();
        TensorAssert.Close(expected.masked_fill(expectedFiltered, 0), actual.masked_fill(expectedFiltered, 0), atol, 1e-4, mask: finite, what: $"{id}/{warper}");
        if (c.GetProperty("kept_tokens").TryGetProperty(warper, out var kept))
            Assert.Equal(kept.GetInt64(), finite.sum().item<long>());
    }
}
