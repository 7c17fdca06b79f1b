using System.Text.Json;
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

    [Theory]
    [MemberData(nameof(GenerateCases))]
    public void Generate_matches_hf_ids_and_beam_scores(string id)
    {
        var c = golden.Case(id);
        var inputs = c.GetProperty("inputs");
        var batch = new BatchEncoding(Json.Matrix(inputs.GetProperty("input_ids"))!, Json.Matrix(inputs.GetProperty("attention_mask"))!);
        var config = ToConfig(c.GetProperty("params"));
        var generator = new TextGenerator(golden.Lm(), Gpt2Tokenizer.Default);

        var sequences = generator.Generate(batch, config);

        var expected = c.GetProperty("expected");
        var expectedNew = Json.Matrix(expected.GetProperty("new_tokens"))!;
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
