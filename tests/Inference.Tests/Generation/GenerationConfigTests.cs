using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;

namespace Gpt2Orleans.Inference.Tests.Generation;

public sealed class GenerationConfigTests
{
    [Fact]
    public void Reads_hf_generation_config_with_defaults_for_absent_fields()
    {
        var config = GenerationConfig.FromJson("""
            {"do_sample": true, "top_k": 0, "top_p": 0.95, "max_length": 50, "eos_token_id": [7, 8], "early_stopping": "never",
             "bad_words_ids": [[1], [2, 3]], "stop_strings": "###", "transformers_version": "4.44.2", "some_future_field": 1}
            """);
        Assert.True(config.DoSample);
        Assert.Equal((0, 0.95, 50), (config.TopK, config.TopP, config.MaxLength));
        Assert.Equal([7, 8], config.EosTokenIds!);
        Assert.Equal(EarlyStopping.Never, config.EarlyStopping);
        Assert.Equal(2, config.BadWordsIds![1].Count);
        Assert.Equal(["###"], config.StopStrings!);
        Assert.Equal(1.0, config.Temperature);
        Assert.Null(config.MaxNewTokens);
    }

    [Fact]
    public void The_golden_checkpoints_generation_config_loads()
    {
        var config = GenerationConfig.FromDirectory(GoldenData.ModelDir("lm"));
        Assert.Equal([50256], config.EosTokenIds!);
        Assert.Equal(new GenerationConfig().TopK, GenerationConfig.FromDirectory(GoldenData.ModelDir("seq_cls")).TopK); // no file: HF's defaults
    }

    [Theory]
    [InlineData("{\"top_k\": \"many\"}", "top_k")]
    [InlineData("{\"early_stopping\": \"soon\"}", "early_stopping")]
    [InlineData("{\"bad_words_ids\": [1, 2]}", "bad_words_ids")]
    public void Wrong_types_are_errors_naming_the_field(string json, string field)
    {
        var error = Assert.Throws<CheckpointException>(() => GenerationConfig.FromJson(json));
        Assert.Contains(field, error.Message);
    }

    [Fact]
    public void Max_length_is_bounded_by_the_context_and_max_new_tokens_wins_when_set()
    {
        Assert.Equal(28, new GenerationConfig { MaxLength = 228 }.MaxNewTokensFor(100, context: 128));
        Assert.Equal(10, new GenerationConfig { MaxLength = 110 }.MaxNewTokensFor(100, context: 128));
        Assert.Equal(0, new GenerationConfig { MaxLength = 228 }.MaxNewTokensFor(130, context: 128));
        Assert.Equal(50, new GenerationConfig { MaxLength = 110, MaxNewTokens = 50 }.MaxNewTokensFor(100, context: 128)); // the engine refuses what does not fit
    }
}
