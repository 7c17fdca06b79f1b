using Gpt2Orleans.Grains.Tests.Support;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>Hundreds of turns over many sessions, then deletes: every KV block goes back to the pool (free or cached).</summary>
public sealed class SessionMemoryTests : IAsyncLifetime
{
    private AlphaCluster _alpha = null!;

    public async Task InitializeAsync() => _alpha = await AlphaCluster.StartAsync(1);

    public async Task DisposeAsync() => await _alpha.DisposeAsync();

    [Fact]
    public async Task Deleted_and_cancelled_sessions_leave_no_kv_blocks_in_use()
    {
        var client = _alpha.Cluster.Client;
        string tenant = await SessionCalls.NewTenant(client);
        var worker = client.GetGrain<IModelGrain>(GrainKeys.ModelWorker(ClusterFixture.Alpha, _alpha.Cluster.Silos[0].SiloAddress.ToParsableString()));
        var sessions = Enumerable.Range(0, 20).Select(i => SessionCalls.Get(client, tenant, $"m{i}", ClusterFixture.Alpha)).ToList();
        foreach (var session in sessions) await session.Create(new SessionSettings { Model = ClusterFixture.Alpha, ContextPolicy = ContextPolicy.DropOldestTurns });
        for (int round = 0; round < 10; round++)
            await Task.WhenAll(sessions.Select(async (session, i) =>
            {
                if ((round + i) % 7 == 0)
                {
                    // Abandon a reply half-way: the turn is not kept and its KV is freed.
                    await using var reply = session.Send($"Round {round}", new GenerationParameters { MaxNewTokens = 8 }).GetAsyncEnumerator();
                    await reply.MoveNextAsync();
                }
                else await SessionCalls.Reply(session, $"Round {round}, session {i}", maxNewTokens: 4);
            }));
        Assert.True((await worker.GetStatus()).KvBlocksUsed > 0, "active sessions keep their KV between turns");

        foreach (var session in sessions) await session.Delete();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        ModelStatus status;
        while ((status = await worker.GetStatus()).KvBlocksUsed > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(0, status.KvBlocksUsed);
        Assert.Equal(0, status.Running + status.Waiting);
    }

    [Fact]
    public async Task A_reply_abandoned_after_the_engine_finished_it_keeps_no_kv()
    {
        var client = _alpha.Cluster.Client;
        string tenant = await SessionCalls.NewTenant(client);
        var worker = client.GetGrain<IModelGrain>(GrainKeys.ModelWorker(ClusterFixture.Alpha, _alpha.Cluster.Silos[0].SiloAddress.ToParsableString()));
        var session = SessionCalls.Get(client, tenant, "abandoned", ClusterFixture.Alpha);
        await session.Create(new SessionSettings { Model = ClusterFixture.Alpha });
        await using (var reply = session.Send("Hello", new GenerationParameters { MaxNewTokens = 8, EosTokenIds = [] }).GetAsyncEnumerator())
        {
            Assert.True(await reply.MoveNextAsync());
            // The engine finishes the turn and keeps its KV while the caller still holds the first token only.
            var finishedBy = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while ((await worker.GetStatus()).Running > 0 && DateTime.UtcNow < finishedBy) await Task.Delay(20);
        } // the caller goes away without the last token
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        ModelStatus status;
        while ((status = await worker.GetStatus()).KvBlocksUsed > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(0, status.KvBlocksUsed); // the uncommitted turn's KV went back
        Assert.Empty((await session.GetTranscript()).Turns);
    }

    [Fact]
    public async Task A_turn_refused_by_the_tenant_s_quota_keeps_the_conversation_s_kv_for_later()
    {
        var client = _alpha.Cluster.Client;
        string tenant = await SessionCalls.NewTenant(client, new TenantQuota { TokensPerMinute = 1 });
        var worker = client.GetGrain<IModelGrain>(GrainKeys.ModelWorker(ClusterFixture.Alpha, _alpha.Cluster.Silos[0].SiloAddress.ToParsableString()));
        var session = SessionCalls.Get(client, tenant, "refused", ClusterFixture.Alpha);
        await session.Create(new SessionSettings { Model = ClusterFixture.Alpha });
        await SessionCalls.Reply(session, "Hello", maxNewTokens: 4); // spends the minute's tokens; its KV stays kept
        await Assert.ThrowsAsync<RetryLaterException>(() => SessionCalls.Reply(session, "And then?"));

        await session.Delete(); // must still find the kept KV to release it
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        ModelStatus status;
        while ((status = await worker.GetStatus()).KvBlocksUsed > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(0, status.KvBlocksUsed);
    }
}
