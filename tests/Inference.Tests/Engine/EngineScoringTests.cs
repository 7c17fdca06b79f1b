using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>Prefill-only scoring runs in the engine's batches (chunked, next to generation) and gives HF's numbers.</summary>
[Collection(GoldenCollection.Name)]
public sealed class EngineScoringTests(GoldenData golden)
{
    [Fact]
    public async Task Prompt_log_probabilities_equal_the_scorer_and_hfs_loss()
    {
        using var engine = new GenerationEngine(golden.Lm(), Gpt2Tokenizer.Default, new EngineOptions { KvBlocks = 64, BlockSize = 4, MaxBatchTokens = 7 });
        var c = golden.Case("lm_loss");
        var ids = GoldenJson.Ints(c.GetProperty("inputs").GetProperty("input_ids")[0]);
        var busy = engine.SubmitAsync(new EngineRequest("t", ids[..5], new GenerationConfig { MaxNewTokens = 8, EosTokenIds = [] }));
        var generating = Task.Run(async () => { await foreach (var _ in busy) { } });

        // Scored twice: the second time the first one's blocks are cached, and must not be used (no logits there).
        foreach (var _ in new[] { 1, 2 })
        {
            var logprobs = await engine.ScoreAsync("t", ids, topLogprobs: 2);
            Assert.Null(logprobs[0]);
            var expected = DenseReference.Score(golden.Lm(), ids);
            for (int i = 1; i < ids.Length; i++)
            {
                Assert.Equal(expected.TokenLogprobs[i]!.Value, logprobs[i]!.Logprob, 1e-4);
                Assert.Equal(ids[i], logprobs[i]!.TokenId);
                Assert.Equal(2, logprobs[i]!.Top.Count);
            }
            double loss = -logprobs.Skip(1).Average(l => l!.Logprob);
            Assert.Equal(c.GetProperty("expected").GetProperty("loss").GetDouble(), loss, 1e-4);
        }
        await generating;
        Assert.Single(await engine.ScoreAsync("t", [464])); // one token: nothing to score, but it completes
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }
}
