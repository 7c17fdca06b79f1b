using Gpt2Orleans.Inference.Scoring;

namespace Gpt2Orleans.Inference.Tests.Scoring;

/// <summary>HF's sliding-window perplexity and the unigram baseline, on numbers worked out by hand.</summary>
public sealed class SlidingWindowPerplexityTests
{
    /// <summary>A stand-in model whose log-probability of a token is −id/10, whatever its context.</summary>
    private static Task<IReadOnlyList<double?>> ByToken(IReadOnlyList<int> window) =>
        Task.FromResult<IReadOnlyList<double?>>(window.Select((id, p) => p == 0 ? (double?)null : -id / 10.0).ToList());

    [Fact]
    public async Task Windows_score_only_the_tokens_before_windows_did_not_weighted_as_hfs_guide_weights_them()
    {
        // Windows of 4 advancing by 2 over [1..6]: [1,2,3,4] scores 2,3,4 (mean 0.3, weight 3); [3,4,5,6] scores 5,6
        // (mean 0.55, weight 2 − 1 = 1, the guide's num_loss_tokens); the loss is (0.9 + 0.55) / 4.
        var result = await SlidingWindowPerplexity.ComputeAsync([1, 2, 3, 4, 5, 6], maxLength: 4, stride: 2, ByToken);
        Assert.Equal(4, result.Tokens);
        Assert.Equal(1.45 / 4, result.Loss, 12);
        Assert.Equal(Math.Exp(1.45 / 4), result.Value, 12);
    }

    [Fact]
    public async Task One_window_over_the_whole_stream_is_the_plain_mean_of_every_predicted_token()
    {
        var result = await SlidingWindowPerplexity.ComputeAsync([5, 1, 7, 2], maxLength: 8, stride: 8, ByToken);
        Assert.Equal(3, result.Tokens);
        Assert.Equal((0.1 + 0.7 + 0.2) / 3, result.Loss, 12);
    }

    [Theory]
    [InlineData(1, 1, "max_length")]
    [InlineData(4, 0, "stride")]
    [InlineData(4, 5, "stride")]
    public async Task Bad_windows_are_refused_naming_the_parameter(int maxLength, int stride, string parameter)
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => SlidingWindowPerplexity.ComputeAsync([1, 2, 3], maxLength, stride, ByToken));
        Assert.Equal(parameter, error.ParamName);
    }

    [Fact]
    public void The_unigram_baseline_is_the_add_one_smoothed_frequency_of_each_predicted_token()
    {
        // Vocabulary 4, training [0, 0, 1]: p(0) = 3/7, p(1) = 2/7, p(2) = p(3) = 1/7. Predicted tokens of [3, 0, 2]: 0 and 2.
        var result = UnigramBaseline.Evaluate([0, 0, 1], [3, 0, 2], vocabSize: 4);
        Assert.Equal(2, result.Tokens);
        Assert.Equal(-(Math.Log(3.0 / 7) + Math.Log(1.0 / 7)) / 2, result.Loss, 12);
    }
}
