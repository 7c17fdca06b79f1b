using System.Text.Json;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>Beam search through the engine (beams as forked sequences) gives HF's sequences and scores, also when batched.</summary>
[Collection(GoldenCollection.Name)]
public sealed class EngineBeamSearchTests(GoldenData golden)
{
    [Theory]
    [InlineData("beam")]
    [InlineData("beam_all_hypotheses")]
    [InlineData("beam_custom_eos")]
    public async Task Beam_search_in_a_busy_engine_matches_hf(string id)
    {
        var c = golden.Case(id);
        var p = c.GetProperty("params");
        var config = new GenerationConfig
        {
            NumBeams = p.GetProperty("num_beams").GetInt32(), NumReturnSequences = p.GetProperty("num_return_sequences").GetInt32(),
            LengthPenalty = p.GetProperty("length_penalty").GetDouble(), EarlyStopping = EarlyStopping.True,
            NoRepeatNgramSize = p.GetProperty("no_repeat_ngram_size").GetInt32(), MaxNewTokens = p.GetProperty("max_new_tokens").GetInt32(),
            PadTokenId = p.GetProperty("pad_token_id").GetInt32(), EosTokenIds = [p.GetProperty("eos_token_id").GetInt32()],
        };
        var prompt = GoldenJson.Ints(c.GetProperty("inputs").GetProperty("input_ids")[0]);
        using var engine = new GenerationEngine(golden.Lm(), Gpt2Tokenizer.Default, new EngineOptions { KvBlocks = 256, BlockSize = 4, MaxBatchTokens = 16 });
        var noise = Task.Run(async () =>
        {
            await foreach (var _ in engine.SubmitAsync(new EngineRequest("other", Gpt2Tokenizer.Default.Encode("Meanwhile, elsewhere"),
                               new GenerationConfig { MaxNewTokens = 30, EosTokenIds = [] }))) { }
        });

        var sequences = Enumerable.Range(0, config.NumReturnSequences).Select(_ => new List<int>()).ToArray();
        var scores = new double[config.NumReturnSequences];
        await foreach (var e in engine.SubmitAsync(new EngineRequest("t", prompt, config)))
        {
            sequences[e.SequenceIndex].Add(e.TokenId);
            if (e.Score is { } score) scores[e.SequenceIndex] = score;
        }
        await noise;

        var expected = c.GetProperty("expected");
        var expectedNew = GoldenJson.Matrix(expected.GetProperty("new_tokens"))!;
        var expectedScores = expected.GetProperty("sequences_scores").EnumerateArray().Select(s => s.GetDouble()).ToArray();
        int pad = config.PadTokenId!.Value;
        for (int i = 0; i < sequences.Length; i++)
        {
            Assert.Equal(expectedNew[i], sequences[i].Select(t => (long)t).Concat(Enumerable.Repeat((long)pad, expectedNew[i].Length)).Take(expectedNew[i].Length));
            Assert.True(Math.Abs(expectedScores[i] - scores[i]) <= 1e-4, $"score {i}: {scores[i]} vs {expectedScores[i]}");
        }
        await Eventually.True(() => engine.Stats.BlocksUsed == 0, "blocks returned");
    }

    /// <summary>
    /// Beam requests stepped together share each group's copy to the host (plain beams with log-probabilities, diverse
    /// groups, beam sampling): each still gives exactly what it gives alone.
    /// </summary>
    [Fact]
    public async Task Beam_requests_stepped_together_give_what_each_gives_alone()
    {
        var configs = new[]
        {
            new GenerationConfig { NumBeams = 3, NumReturnSequences = 2, MaxNewTokens = 10, Logprobs = 2, EosTokenIds = [] },
            new GenerationConfig { NumBeams = 4, NumBeamGroups = 2, DiversityPenalty = 0.7, NumReturnSequences = 2, MaxNewTokens = 10 },
            new GenerationConfig { NumBeams = 2, DoSample = true, Seed = 17, MaxNewTokens = 10, Logprobs = 1 },
            new GenerationConfig { NumBeams = 6, NumBeamGroups = 3, DiversityPenalty = 0.3, MaxNewTokens = 10, EosTokenIds = [] },
        };
        var prompts = new[] { "The weather today", "Once upon a time", "In the beginning", "A quick brown" }.Select(Gpt2Tokenizer.Default.Encode).ToArray();
        GenerationEngine NewEngine() => new(golden.Lm(), Gpt2Tokenizer.Default, new EngineOptions { KvBlocks = 512, BlockSize = 4, MaxBatchTokens = 64, BatchInvariant = true });
        static async Task<string> Run(GenerationEngine engine, IReadOnlyList<int> prompt, GenerationConfig config)
        {
            var events = new List<string>();
            await foreach (var e in engine.SubmitAsync(new EngineRequest("t", prompt, config)))
                events.Add($"{e.SequenceIndex}:{e.TokenId}:{e.Score}:{e.Logprob?.Logprob}:{string.Join(',', e.Logprob?.Top.Select(t => $"{t.TokenId}={t.Logprob}") ?? [])}:{e.Finish}");
            return string.Join('\n', events);
        }
        var alone = new List<string>();
        using (var engine = NewEngine())
            for (int i = 0; i < configs.Length; i++) alone.Add(await Run(engine, prompts[i], configs[i]));
        using var shared = NewEngine();
        var together = await Task.WhenAll(configs.Select((config, i) => Run(shared, prompts[i], config)));
        for (int i = 0; i < configs.Length; i++) Assert.Equal(alone[i], together[i]);
    }
}
