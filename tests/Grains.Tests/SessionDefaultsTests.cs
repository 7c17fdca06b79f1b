using Gpt2Orleans.Grains.Tests.Support;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>
/// A session's defaults apply to every turn that leaves them unset, and a turn's own parameters win: the session
/// settles the reply length itself, the model's silo layers the rest (log-probabilities here) over the model's defaults.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SessionDefaultsTests(ClusterFixture fixture)
{
    [Fact]
    public async Task A_turn_takes_the_sessions_defaults_where_it_sets_nothing_and_its_own_where_it_does()
    {
        var client = fixture.Cluster.Client;
        string tenant = await SessionCalls.NewTenant(client);
        var session = SessionCalls.Get(client, tenant, "defaults", ClusterFixture.Alpha);
        await session.Create(new SessionSettings
        {
            Model = ClusterFixture.Alpha,
            Defaults = new GenerationParameters { MaxNewTokens = 3, Logprobs = 0, EosTokenIds = [] },
        });

        var first = new List<GeneratedToken>();
        await foreach (var token in session.Send("Hello there")) first.Add(token);
        AssertReply(first, maxTokens: 3);

        var second = new List<GeneratedToken>();
        await foreach (var token in session.Send("And then?", new GenerationParameters { MaxNewTokens = 2 })) second.Add(token);
        AssertReply(second, maxTokens: 2);
    }

    private static void AssertReply(List<GeneratedToken> events, int maxTokens)
    {
        var usage = events.Last(e => e.Usage is not null).Usage!;
        string finish = events.Last(e => e.FinishReason is not null).FinishReason!;
        if (finish == "length") Assert.Equal(maxTokens, usage.CompletionTokens);
        else Assert.True(usage.CompletionTokens <= maxTokens, $"{usage.CompletionTokens} tokens, finish {finish}");
        var tokens = events.Where(e => e.TokenId >= 0).ToList();
        Assert.NotEmpty(tokens);
        Assert.All(tokens, t => Assert.NotNull(t.Logprobs)); // the session's logprobs default, applied on the model's silo
    }
}
