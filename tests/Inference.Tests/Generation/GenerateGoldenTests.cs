using System.Text.Json;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Generation;

[Collection(GoldenCollection.Name)]
public sealed class GenerateGoldenTests(GoldenData golden)
{
    public static TheoryData<string> GenerateCases() =>
        [.. JsonDocument.Parse(File.ReadAllText(Path.Combine(GoldenData.Root, "cases.json"))).RootElement.GetProperty("cases")
            .EnumerateArray().Where(c => c.GetProperty("kind").GetString() == "generate").Select(c => c.GetProperty("id").GetString()!)];

    /// <summary>
    /// Every golden generation through the engine, alone and in a busy engine (another tenant's stream decoding beside
    /// it, prefill in chunks). HF's left-padded batch rows are the engine's separate requests: the padding is masked
    /// out in HF and absent here, so each row's tokens must be the same.
    /// </summary>
    [Theory]
    [MemberData(nameof(GenerateCases))]
    public async Task Generate_matches_hf_ids_and_beam_scores_alone_and_in_a_busy_engine(string id)
    {
        foreach (bool busy in new[] { false, true })
            Check(id, await Generate(id, busy));
    }

    private async Task<IReadOnlyList<GeneratedSequence>> Generate(string id, bool busy)
    {
        var c = golden.Case(id);
        var inputs = c.GetProperty("inputs");
        var ids = GoldenJson.Matrix(inputs.GetProperty("input_ids"))!;
        var mask = GoldenJson.Matrix(inputs.GetProperty("attention_mask"))!;
        var prompts = ids.Select((row, r) => (IReadOnlyList<int>)row.Where((_, t) => mask[r][t] == 1).Select(t => (int)t).ToList()).ToList();
        using var engine = new GenerationEngine(golden.Lm(), Gpt2Tokenizer.Default, new EngineOptions { KvBlocks = 512, BlockSize = 4, MaxBatchTokens = 16 });
        using var stop = new CancellationTokenSource();
        var noise = busy ? Task.Run(async () =>
        {
            try
            {
                while (true)
                    await foreach (var _ in engine.SubmitAsync(new EngineRequest("other", Gpt2Tokenizer.Default.Encode("Meanwhile, elsewhere in the town"),
                                       new GenerationConfig { MaxNewTokens = 30, EosTokenIds = [] }), stop.Token)) { }
            }
            catch (OperationCanceledException) { }
        }) : Task.CompletedTask;
        if (busy) await Eventually.True(() => engine.Stats.Running > 0, "the other tenant's stream is running");
        var sequences = await engine.GenerateAsync(prompts, ToConfig(c.GetProperty("params")));
        stop.Cancel();
        await noise;
        await Eventually.True(() => engine.Stats.BlocksUsed == 0, "blocks returned");
        return sequences;
    }

    private void Check(string id, IReadOnlyList<GeneratedSequence> sequences)
    {
        var c = golden.Case(id);
        var config = ToConfig(c.GetProperty("params"));

        var expected = c.GetProperty("expected");
        var expectedNew = GoldenJson.Matrix(expected.GetProperty("new_tokens"))!;
        Assert.Equal(expectedNew.Length, sequences.Count);
        int pad = config.PadTokenId!.Value;
        for (int i = 0; i < sequences.Count; i++)
        {
            var padded = sequences[i].Ids.Select(t => (long)t).Concat(Enumerable.Repeat((long)pad, expectedNew[i].Length)).Take(expectedNew[i].Length);
            Assert.Equal(expectedNew[i], padded);
            Assert.True(sequences[i].Ids.Count <= expectedNew[i].Length, "no tokens beyond HF's");
        }
        if (expected.TryGetProperty("sequences_scores", out var scores))
        {
            var expectedScores = scores.EnumerateArray().Select(s => s.GetDouble()).ToArray();
            for (int i = 0; i < sequences.Count; i++)
                Assert.True(Math.Abs(expectedScores[i] - sequences[i].Score!.Value) <= 1e-4, $"score {i}: {sequences[i].Score} vs {expectedScores[i]}");
        }
    }

    private static GenerationConfig ToConfig(JsonElement p)
    {
        int? Int(string name) => p.TryGetProperty(name, out var v) ? v.GetInt32() : null;
        double? Double(string name) => p.TryGetProperty(name, out var v) ? v.GetDouble() : null;
        return new GenerationConfig
        {
            DoSample = p.GetProperty("do_sample").GetBoolean(),
            NumBeams = Int("num_beams") ?? 1,
            NumReturnSequences = Int("num_return_sequences") ?? 1,
            LengthPenalty = Double("length_penalty") ?? 1.0,
            EarlyStopping = p.TryGetProperty("early_stopping", out var e) && e.ValueKind == JsonValueKind.True ? EarlyStopping.True : EarlyStopping.False,
            NoRepeatNgramSize = Int("no_repeat_ngram_size") ?? 0,
            RepetitionPenalty = Double("repetition_penalty") ?? 1.0,
            MinNewTokens = Int("min_new_tokens"),
            MaxNewTokens = Int("max_new_tokens"),
            PadTokenId = Int("pad_token_id"),
            EosTokenIds = Int("eos_token_id") is { } eos ? [eos] : null,
        };
    }
}
