using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Generation;

/// <summary>Generation options beyond the golden cases: sampling, stop strings, bad words, log-probabilities, validation.</summary>
[Collection(GoldenCollection.Name)]
public sealed class GenerationBehaviourTests(GoldenData golden)
{
    private IReadOnlyList<GeneratedSequence> Generate(IReadOnlyList<string> prompts, GenerationConfig config,
        Action<TokenEvent>? onEvent = null, CancellationToken cancellationToken = default) =>
        Generate(prompts.Select(p => Gpt2Tokenizer.Default.Encode(p)).ToList(), config, onEvent, cancellationToken);

    /// <summary>One engine per call, as the CLI runs one; the prompts batched together.</summary>
    private IReadOnlyList<GeneratedSequence> Generate(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationConfig config,
        Action<TokenEvent>? onEvent = null, CancellationToken cancellationToken = default, Inference.Model.Gpt2LMHeadModel? model = null)
    {
        using var engine = new GenerationEngine(model ?? golden.Lm(), Gpt2Tokenizer.Default, new EngineOptions { KvBlocks = 256, BlockSize = 4 });
        return engine.GenerateAsync(prompts, config, onEvent: onEvent is null ? null : (_, e) => onEvent(e), cancellationToken: cancellationToken).GetAwaiter().GetResult();
    }
    private static readonly string[] Prompt = ["The meaning of life is"];

    [Fact]
    public void Seeded_sampling_is_reproducible_and_each_returned_sequence_draws_its_own()
    {
        var config = new GenerationConfig { DoSample = true, Seed = 1234, MaxNewTokens = 16, NumReturnSequences = 3, TopK = 0 };
        var first = Generate(Prompt, config);
        var second = Generate(Prompt, config);
        Assert.Equal(3, first.Count);
        Assert.Equal(first.Select(s => s.Ids), second.Select(s => s.Ids));
        Assert.True(first.Select(s => string.Join(",", s.Ids)).Distinct().Count() > 1, "three samples should not all be equal");
        var other = Generate(Prompt, config with { Seed = 99 });
        Assert.NotEqual(first.Select(s => s.Ids), other.Select(s => s.Ids));
    }

    [Fact]
    public void Degenerate_sampling_parameters_inside_their_ranges_still_generate()
    {
        var greedy = Generate(Prompt, new GenerationConfig { MaxNewTokens = 8 })[0].Ids;
        // Below MinSamplingTemperature sampling is greedy search, its limit (1e-38 overflowed every logit to ±∞).
        Assert.Equal(greedy, Generate(Prompt, new GenerationConfig { DoSample = true, Temperature = 1e-38, Seed = 5, MaxNewTokens = 8 })[0].Ids);
        // A vanishing repetition penalty divides repeated tokens' logits past float's range: they share the mass.
        // (The bias, applied first as HF does, makes one prompt token's logit positive, so at least one overflows.)
        var repeated = Gpt2Tokenizer.Default.Encode(Prompt[0]);
        var penalised = Generate(Prompt, new GenerationConfig
        {
            DoSample = true, RepetitionPenalty = 1e-39, Seed = 5, MaxNewTokens = 8, TopK = 0, SequenceBias = [([repeated[0]], 50.0)],
        })[0];
        Assert.Equal(8, penalised.Ids.Count);
        Assert.Contains(penalised.Ids[0], repeated); // an overflowed prompt token, infinitely favoured
    }

    [Fact]
    public void Ids_past_the_tokenizers_vocabulary_are_never_generated()
    {
        // vocab_size padded past the tokenizer's 50257 ids (as nanoGPT pads to 50304), and a bias that would make the model pick a padded id.
        using var model = Inference.Model.Gpt2LMHeadModel.CreateRandom(golden.Lm().Config with { VocabSize = 50304, NEmbd = 16, NHead = 2, NLayer = 1 }, seed: 1);
        foreach (var config in new[]
        {
            new GenerationConfig { MaxNewTokens = 3, SequenceBias = [([50300], 100.0)], EosTokenIds = [] },
            new GenerationConfig { MaxNewTokens = 3, SequenceBias = [([50300], 100.0)], EosTokenIds = [], DoSample = true, Seed = 2, NumReturnSequences = 2 },
            new GenerationConfig { MaxNewTokens = 3, SequenceBias = [([50300], 100.0)], EosTokenIds = [], NumBeams = 2 },
        })
            foreach (var result in Generate([Gpt2Tokenizer.Default.Encode(Prompt[0])], config, model: model))
            {
                Assert.Equal(3, result.Ids.Count);
                Assert.All(result.Ids, id => Assert.InRange(id, 0, Gpt2Tokenizer.Default.VocabSize - 1));
            }
    }

    [Fact]
    public void Beam_sampling_is_seeded_and_returns_ranked_hypotheses()
    {
        var config = new GenerationConfig { DoSample = true, NumBeams = 3, NumReturnSequences = 2, MaxNewTokens = 8, Seed = 21, TopK = 0 };
        var first = Generate(Prompt, config);
        Assert.Equal(first.Select(s => s.Ids), Generate(Prompt, config).Select(s => s.Ids));
        Assert.True(first[0].Score >= first[1].Score);
        var seeds = Enumerable.Range(0, 4).Select(seed => string.Join(",", Generate(Prompt, config with { Seed = seed })[0].Ids));
        Assert.True(seeds.Distinct().Count() > 1, "different seeds should explore different beams");
    }

    [Fact]
    public void Sampling_with_top_k_1_is_greedy()
    {
        var greedy = Generate(Prompt, new GenerationConfig { MaxNewTokens = 12 });
        var sampled = Generate(Prompt, new GenerationConfig { MaxNewTokens = 12, DoSample = true, TopK = 1, Seed = 5 });
        Assert.Equal(greedy[0].Ids, sampled[0].Ids);
    }

    [Fact]
    public void A_stop_string_ends_the_sequence_once_it_appears()
    {
        var full = Generate(Prompt, new GenerationConfig { MaxNewTokens = 24 })[0];
        string stop = full.Text.Substring(full.Text.Length / 2, 3);
        var stopped = Generate(Prompt, new GenerationConfig { MaxNewTokens = 24, StopStrings = [stop] })[0];
        Assert.Equal(FinishReason.StopString, stopped.FinishReason);
        Assert.Equal(stop, stopped.StopString);
        Assert.Equal(full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)], stopped.Text); // cut out, with all after it
        Assert.Contains(stop, Gpt2Tokenizer.Default.Decode(stopped.Ids));
        Assert.DoesNotContain(stop, Gpt2Tokenizer.Default.Decode(stopped.Ids.Take(stopped.Ids.Count - 1)));
        Assert.Equal(full.Ids.Take(stopped.Ids.Count), stopped.Ids);
    }

    [Fact]
    public void Bad_words_are_never_generated()
    {
        var full = Generate(Prompt, new GenerationConfig { MaxNewTokens = 10 })[0];
        int banned = full.Ids[0];
        var result = Generate(Prompt, new GenerationConfig { MaxNewTokens = 10, BadWordsIds = [[banned]] })[0];
        Assert.DoesNotContain(banned, result.Ids);
        // A two-token bad word bans its second token only right after its first.
        var pair = Generate(Prompt, new GenerationConfig { MaxNewTokens = 10, BadWordsIds = [[full.Ids[0], full.Ids[1]]] })[0];
        Assert.Equal(full.Ids[0], pair.Ids[0]);
        Assert.NotEqual(full.Ids[1], pair.Ids[1]);
    }

    [Fact]
    public void Log_probabilities_agree_with_scoring_the_text()
    {
        var tokenizer = Gpt2Tokenizer.Default;
        var result = Generate(Prompt, new GenerationConfig { MaxNewTokens = 8, Logprobs = 3 })[0];
        var score = DenseReference.Score(golden.Lm(), [.. tokenizer.Encode(Prompt[0]), .. result.Ids]);
        var scored = score.TokenLogprobs.TakeLast(result.Ids.Count).Select(v => v!.Value).ToArray();
        for (int i = 0; i < result.Ids.Count; i++)
        {
            Assert.Equal(scored[i], result.Logprobs![i].Logprob, 1e-4);
            Assert.Equal(3, result.Logprobs[i].Top.Count);
            Assert.Equal(result.Ids[i], result.Logprobs[i].Top[0].TokenId); // greedy picks the most likely token
        }
    }

    [Fact]
    public void Beam_search_log_probabilities_agree_with_scoring_the_text()
    {
        var tokenizer = Gpt2Tokenizer.Default;
        var results = Generate(Prompt, new GenerationConfig { NumBeams = 3, NumReturnSequences = 2, MaxNewTokens = 6, Logprobs = 2 });
        foreach (var result in results)
        {
            var score = DenseReference.Score(golden.Lm(), [.. tokenizer.Encode(Prompt[0]), .. result.Ids]);
            var scored = score.TokenLogprobs.TakeLast(result.Ids.Count).Select(v => v!.Value).ToArray();
            Assert.Equal(result.Ids.Count, result.Logprobs!.Count);
            for (int i = 0; i < scored.Length; i++)
            {
                Assert.Equal(result.Ids[i], result.Logprobs[i].TokenId);
                Assert.Equal(scored[i], result.Logprobs[i].Logprob, 1e-4);
                Assert.Equal(2, result.Logprobs[i].Top.Count);
            }
        }
    }

    [Fact]
    public void An_empty_prompt_without_a_bos_token_is_a_clear_error()
    {
        using var model = Inference.Model.Gpt2LMHeadModel.CreateRandom(
            golden.Lm().Config with { BosTokenId = null, NEmbd = 16, NHead = 2, NLayer = 1 }, seed: 1);
        var error = Assert.ThrowsAny<ArgumentException>(() =>
            Generate([(IReadOnlyList<int>)[]], new GenerationConfig { MaxNewTokens = 2 }, model: model));
        Assert.Contains("bos_token_id", error.Message);
    }

    [Fact]
    public void Diverse_beam_search_returns_distinct_groups_and_scores_in_order()
    {
        var config = new GenerationConfig { NumBeams = 4, NumBeamGroups = 2, DiversityPenalty = 5.0, NumReturnSequences = 4, MaxNewTokens = 8 };
        var results = Generate(Prompt, config);
        Assert.Equal(4, results.Count);
        Assert.Equal(4, results.Select(r => string.Join(",", r.Ids)).Distinct().Count());
        Assert.True(results.Zip(results.Skip(1)).All(p => p.First.Score >= p.Second.Score));
        var plain = Generate(Prompt, config with { NumBeamGroups = 1, DiversityPenalty = 0 });
        Assert.NotEqual(plain.Select(r => r.Ids), results.Select(r => r.Ids));
    }

    [Fact]
    public void Min_p_and_typical_p_sampling_run_and_respect_their_filters()
    {
        foreach (var config in new[]
                 {
                     new GenerationConfig { DoSample = true, MinP = 0.5, TopK = 0, Seed = 3, MaxNewTokens = 6 },
                     new GenerationConfig { DoSample = true, TypicalP = 0.5, Seed = 3, MaxNewTokens = 6 },
                 })
        {
            var result = Generate(Prompt, config)[0];
            Assert.Equal(6, result.Ids.Count);
        }
    }

    [Fact]
    public void An_empty_prompt_starts_from_bos()
    {
        var result = Generate([(IReadOnlyList<int>)[]], new GenerationConfig { MaxNewTokens = 3 });
        var fromBos = Generate([(IReadOnlyList<int>)[50256]], new GenerationConfig { MaxNewTokens = 3 });
        Assert.Equal(fromBos[0].Ids, result[0].Ids);
    }

    [Theory]
    [InlineData("num_return_sequences", 1, 2, 0)]   // greedy with several sequences
    [InlineData("num_return_sequences", 2, 3, 0)]   // more sequences than beams
    [InlineData("max_new_tokens", 1, 1, 500)]       // beyond n_positions (128)
    [InlineData("top_p", 1, 1, -1)]
    public void Contradictory_or_impossible_parameters_are_rejected_by_name(string parameter, int beams, int sequences, int maxNewTokens)
    {
        var config = new GenerationConfig
        {
            NumBeams = beams, NumReturnSequences = sequences, MaxNewTokens = maxNewTokens > 0 ? maxNewTokens : 4, TopP = maxNewTokens < 0 ? 1.5 : 1.0,
        };
        var error = Assert.ThrowsAny<ArgumentException>(() => Generate(Prompt, config));
        Assert.Contains(parameter, error.Message);
    }

    [Fact]
    public void Out_of_vocabulary_ids_and_long_prompts_are_rejected_or_truncated_on_request()
    {
        Assert.Contains("outside the vocabulary", Assert.ThrowsAny<ArgumentException>(() =>
            Generate([(IReadOnlyList<int>)[1, 60000]], new GenerationConfig { MaxNewTokens = 2 })).Message);
        var longPrompt = Enumerable.Range(0, 126).Select(i => 100 + i).ToArray();
        Assert.ThrowsAny<ArgumentException>(() => Generate([longPrompt], new GenerationConfig { MaxNewTokens = 5 }));
        var truncated = Generate([longPrompt], new GenerationConfig { MaxNewTokens = 5, TruncatePrompt = true, EosTokenIds = [] });
        Assert.Equal(5, truncated[0].Ids.Count);
    }

    [Fact]
    public void Cancellation_stops_generation()
    {
        using var cancel = new CancellationTokenSource();
        int produced = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => Generate(Prompt, new GenerationConfig { MaxNewTokens = 50, EosTokenIds = [] },
            _ => { if (++produced == 3) cancel.Cancel(); }, cancel.Token));
        Assert.Equal(3, produced);
    }

    [Fact]
    public void Cancellation_also_stops_the_events_already_buffered()
    {
        using var cancel = new CancellationTokenSource();
        int produced = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => Generate(Prompt, new GenerationConfig { MaxNewTokens = 50, EosTokenIds = [] }, _ =>
        {
            if (++produced != 3) return;
            cancel.Cancel();
            Thread.Sleep(300); // a slow reader: the engine buffers the next tokens meanwhile
        }, cancel.Token));
        Assert.Equal(3, produced);
    }
}
