using Gpt2Orleans.Grains.Tests.Support;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>
/// A session answers one turn at a time: a turn that arrives while another is still being read (its client hung up,
/// and the cancellation has not reached the grain yet) waits for it and is answered, instead of being refused.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SessionTurnOrderTests(ClusterFixture fixture)
{
    [Fact]
    public async Task A_turn_that_arrives_during_another_waits_for_it_and_is_answered()
    {
        var client = fixture.Cluster.Client;
        string tenant = await SessionCalls.NewTenant(client);
        var session = SessionCalls.Get(client, tenant, "turns", ClusterFixture.Alpha);
        await session.Create(new SessionSettings { Model = ClusterFixture.Alpha, Defaults = new GenerationParameters { MaxNewTokens = 4, EosTokenIds = [] } });

        await using var first = session.Send("Hello there").GetAsyncEnumerator();
        Assert.True(await first.MoveNextAsync()); // the first turn is under way, and stays so while nobody reads it
        var second = SessionCalls.Reply(session, "And then?", maxNewTokens: 2);
        await Task.Delay(300);
        Assert.False(second.IsCompleted, "the second turn should wait for the first, not be refused or run beside it");
        while (await first.MoveNextAsync()) { }
        var reply = await second.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(2, reply.Count(t => t.TokenId >= 0));
        Assert.Equal(["Hello there", "And then?"], (await session.GetTranscript()).Turns.Where(t => t.Role == "user").Select(t => t.Text)); // both turns, in order
    }
}
