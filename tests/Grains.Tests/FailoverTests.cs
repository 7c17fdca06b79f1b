using Gpt2Orleans.Grains.Tests.Support;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>A silo stops mid-conversation: every session it held continues on another serving silo, losing no turn.</summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private AlphaCluster _alpha = null!;
    private InProcessTestCluster Cluster => _alpha.Cluster;

    public async Task InitializeAsync() => _alpha = await AlphaCluster.StartAsync(3);

    public async Task DisposeAsync() => await _alpha.DisposeAsync();

    [Fact]
    public async Task After_a_silo_stops_its_sessions_continue_elsewhere_with_the_same_greedy_replies()
    {
        var client = Cluster.Client;
        string tenant = await SessionCalls.NewTenant(client);
        string[] turns = ["Hello", "How are you?", "Tell me more"];
        var management = client.GetGrain<IManagementGrain>(0);
        var sessions = new List<string>();
        for (int i = 0; i < 8; i++)
        {
            var session = SessionCalls.Get(client, tenant, $"s{i}", ClusterFixture.Alpha);
            await session.Create(new SessionSettings { Model = ClusterFixture.Alpha, SystemPrompt = "Be brief." });
            await SessionCalls.Reply(session, turns[0]);
            await SessionCalls.Reply(session, turns[1]);
            sessions.Add($"s{i}");
        }
        // Stop a secondary silo that holds sessions (the primary hosts the test cluster's membership).
        var locations = new Dictionary<string, SiloAddress>();
        foreach (var id in sessions) locations[id] = (await management.GetActivationAddress(SessionCalls.Get(client, tenant, id, ClusterFixture.Alpha)))!;
        var victim = Cluster.Silos.Skip(1).OrderByDescending(s => locations.Values.Count(l => l.Equals(s.SiloAddress))).First();
        var moved = locations.Where(l => l.Value.Equals(victim.SiloAddress)).Select(l => l.Key).ToList();
        Assert.NotEmpty(moved);
        await Cluster.StopSiloAsync(victim);

        var expected = SessionCalls.ExpectedReplies(ClusterFixture.AlphaFolder, "Be brief.", turns);
        foreach (var id in sessions)
        {
            var session = SessionCalls.Get(client, tenant, id, ClusterFixture.Alpha);
            var reply = (await SessionCalls.Reply(session, turns[2])).Select(t => t.TokenId).ToList();
            Assert.Equal(expected[2], reply);
            var transcript = await session.GetTranscript();
            Assert.Equal(6, transcript.Turns.Count);
            Assert.NotEqual(victim.SiloAddress, await management.GetActivationAddress(session));
        }
    }
}
