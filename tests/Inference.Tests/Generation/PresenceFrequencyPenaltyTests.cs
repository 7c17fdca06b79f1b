using Gpt2Orleans.Inference.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Generation;

/// <summary>OpenAI's presence and frequency penalties, against their definition: only generated tokens count.</summary>
public sealed class PresenceFrequencyPenaltyTests
{
    [Fact]
    public void Each_generated_token_loses_frequency_times_its_count_plus_presence_once()
    {
        using var scope = torch.NewDisposeScope();
        var scores = torch.zeros(2, 6);
        // Prompt of 2 tokens (ids 1, 1) then generated tokens: row 0 → 2, 2, 3; row 1 → nothing yet.
        IReadOnlyList<IReadOnlyList<int>> ids = [[1, 1, 2, 2, 3], [1, 1]];
        var result = new PresenceFrequencyPenaltyLogitsProcessor(presence: 0.5, frequency: 0.25, promptLength: 2).Process(ids, scores);
        Assert.Equal(new[] { 0f, 0f, -(0.25f * 2 + 0.5f), -(0.25f + 0.5f), 0f, 0f }, result[0].data<float>().ToArray());
        Assert.All(result[1].data<float>().ToArray(), v => Assert.Equal(0f, v)); // prompt tokens are not penalised
    }

    [Theory]
    [InlineData(2.5, 0, "presence_penalty")]
    [InlineData(0, -3, "frequency_penalty")]
    public void Out_of_range_penalties_are_refused_by_name(double presence, double frequency, string name)
    {
        var error = Assert.Throws<ArgumentException>(() => new GenerationConfig { PresencePenalty = presence, FrequencyPenalty = frequency }.Validate(50257));
        Assert.Equal(name, error.ParamName);
    }
}
