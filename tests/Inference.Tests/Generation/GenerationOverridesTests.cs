using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Inference.Tests.Generation;

/// <summary>The one place where given parameters are layered over defaults: a request over a session's defaults over the model's.</summary>
public sealed class GenerationOverridesTests
{
    [Fact]
    public void A_request_wins_over_session_defaults_which_win_over_the_models()
    {
        var model = new GenerationConfig { Temperature = 0.7, TopK = 40, MaxNewTokens = 30, RepetitionPenalty = 1.3 };
        var session = new GenerationOverrides { TopK = 10, MaxNewTokens = 12, StopStrings = ["\n"] };
        var request = new GenerationOverrides { MaxNewTokens = 5, DoSample = true };

        var config = request.ApplyTo(session.ApplyTo(model));

        Assert.Equal(5, config.MaxNewTokens);          // the request's
        Assert.True(config.DoSample);
        Assert.Equal(10, config.TopK);                 // the session's
        Assert.Equal(["\n"], config.StopStrings);
        Assert.Equal(0.7, config.Temperature);         // the model's
        Assert.Equal(1.3, config.RepetitionPenalty);
        Assert.Equal(1.0, config.TopP);                // HF's default
    }

    [Fact]
    public void Nothing_given_leaves_the_defaults_unchanged()
    {
        var model = new GenerationConfig { Temperature = 0.7, NumBeams = 4, EarlyStopping = EarlyStopping.Never, TruncatePrompt = true };
        Assert.Equal(model, new GenerationOverrides().ApplyTo(model));
    }
}
