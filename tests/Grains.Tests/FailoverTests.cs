using Gpt2Orleans.Grains.Hosting;
using Gpt2Orleans.Grains.Models;
using Gpt2Orleans.Grains.Tests.Support;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>A silo stops mid-conversation: every session it held continues on another serving silo, losing no turn.</summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private readonly string _storage = Path.Combine(Path.GetTempPath(), "gpt2o-failover-" + Guid.NewGuid().ToString("N"));
    private InProcessTestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddGpt2Orleans(new ModelHostOptions { Models = new() { [ClusterFixture.Alpha] = ClusterFixture.AlphaFolder }, KvCacheBytes = 16L << 20 });
            silo.AddGpt2OrleansFileStorage(_storage);
        });
        _cluster = builder.Build();
        await _cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        try { Directory.Delete(_storage, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task After_a_silo_stops_its_sessions_continue_elsewhere_with_the_same_greedy_replies()
    {
        var client = _cluster.Client;
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
        var victim = _cluster.Silos.Skip(1).OrderByDescending(s => locations.Values.Count(l => l.Equals(s.SiloAddress))).First();
        var moved = locations.Where(l => l.Value.Equals(victim.SiloAddress)).Select(l => l.Key).ToList();
        Assert.NotEmpty(moved);
        await _cluster.StopSiloAsync(victim);

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
