using Gpt2Orleans.Grains.Tests.Support;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>
/// A steady-state session turn makes few grain calls: the caller's Send, then from the session only the tenant's
/// admission and metering and its worker's Generate (it tokenizes with the model on its own silo, keeps the context
/// length, and names its KV by its own key). With the gateway's lookup of the session's model that is five in all.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SessionCallCountTests(ClusterFixture fixture)
{
    [Fact]
    public async Task A_steady_state_turn_makes_three_grain_calls_from_the_session()
    {
        var client = fixture.Cluster.Client;
        string tenant = await SessionCalls.NewTenant(client);
        var session = SessionCalls.Get(client, tenant, "counted", ClusterFixture.Alpha);
        await session.Create(new SessionSettings { Model = ClusterFixture.Alpha, SystemPrompt = "Be brief." });
        await SessionCalls.Reply(session, "Hello there"); // the first turn of an activation also looks for spilled KV

        GrainCallCounter.Calls.Clear();
        RequestContext.Set(GrainCallCounter.Key, true);
        try { await SessionCalls.Reply(session, "And then?"); }
        finally { RequestContext.Remove(GrainCallCounter.Key); }

        var calls = GrainCallCounter.Calls.ToList();
        Assert.Equal(["BeginStream", "EndStream", "stream"], calls.Order()); // the stream is the worker's Generate
    }
}
