using Orleans.Runtime;
using Gpt2Orleans.Grains.Tenants;
using Gpt2Orleans.Grains.Tests.Support;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>Tenants: keys stored hashed and revocable, allowed models, quotas (sessions, streams, tokens per minute) and usage.</summary>
[Collection(ClusterCollection.Name)]
public sealed class TenantTests(ClusterFixture fixture)
{
    private IClusterClient Client => fixture.Client;

    [Fact]
    public async Task A_key_maps_to_its_tenant_by_hash_only_and_stops_working_when_revoked()
    {
        string tenant = await SessionCalls.NewTenant(Client);
        var issued = await Client.GetGrain<ITenantGrain>(tenant).IssueKey();
        Assert.StartsWith(ApiKeys.Prefix, issued.Key);

        var owner = await Client.GetGrain<IApiKeyGrain>(ApiKeys.Hash(issued.Key)).GetOwner();
        Assert.Equal(new ApiKeyOwner(tenant, issued.KeyId), owner);
        Assert.Null(await Client.GetGrain<IApiKeyGrain>(ApiKeys.Hash(issued.Key + "x")).GetOwner());

        // The clear key is in no stored file.
        foreach (var file in Directory.GetFiles(fixture.StorageRoot, "*", SearchOption.AllDirectories))
            Assert.DoesNotContain(issued.Key, await File.ReadAllTextAsync(file));

        await Client.GetGrain<ITenantGrain>(tenant).RevokeKey(issued.KeyId);
        Assert.Null(await Client.GetGrain<IApiKeyGrain>(ApiKeys.Hash(issued.Key)).GetOwner());
        Assert.Empty(await Client.GetGrain<ITenantGrain>(tenant).ListKeys());
    }

    /// <summary>
    /// A session listed but never stored (a crash between the tenant's write and the session's): deleting it finishes
    /// the job, and a new activation of the tenant drops such entries before listing or counting them.
    /// </summary>
    [Fact]
    public async Task A_listed_session_whose_state_is_missing_is_deletable_and_dropped_from_the_list()
    {
        string tenant = await SessionCalls.NewTenant(Client, new TenantQuota { MaxSessions = 2 });
        var grain = Client.GetGrain<ITenantGrain>(tenant);
        await grain.RegisterSession("ghost-a", ClusterFixture.Alpha); // what a crash after the tenant's write leaves
        await grain.RegisterSession("ghost-b", ClusterFixture.Alpha);
        Assert.Equal(["ghost-a", "ghost-b"], await grain.ListSessions());

        await SessionCalls.Get(Client, tenant, "ghost-a", ClusterFixture.Alpha).Delete();
        Assert.Equal(["ghost-b"], await grain.ListSessions());
        await Assert.ThrowsAsync<SessionNotFoundException>(() => SessionCalls.Get(Client, tenant, "ghost-a", ClusterFixture.Alpha).Delete());

        // As after a restart: the tenant's next activation checks what it inherited against the session store.
        await Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        Assert.Empty(await grain.ListSessions());
        // The ghost no longer counts against max_sessions.
        await SessionCalls.Get(Client, tenant, "real-1", ClusterFixture.Alpha).Create(new SessionSettings { Model = ClusterFixture.Alpha });
        await SessionCalls.Get(Client, tenant, "real-2", ClusterFixture.Alpha).Create(new SessionSettings { Model = ClusterFixture.Alpha });
        Assert.Equal(["real-1", "real-2"], await grain.ListSessions());
    }

    [Fact]
    public async Task Allowed_models_and_the_session_quota_are_enforced()
    {
        string tenant = await SessionCalls.NewTenant(Client, new TenantQuota { MaxSessions = 2 });
        await Client.GetGrain<ITenantGrain>(tenant).SetAllowedModels([ClusterFixture.Alpha]);
        var error = await Assert.ThrowsAsync<InvalidRequestException>(() =>
            SessionCalls.Get(Client, tenant, "b", ClusterFixture.Beta).Create(new SessionSettings { Model = ClusterFixture.Beta }));
        Assert.Contains("not available to this tenant", error.Message);

        await SessionCalls.Get(Client, tenant, "one", ClusterFixture.Alpha).Create(new SessionSettings { Model = ClusterFixture.Alpha });
        await SessionCalls.Get(Client, tenant, "two", ClusterFixture.Alpha).Create(new SessionSettings { Model = ClusterFixture.Alpha });
        // A limit that time does not lift: not a "retry later" (the API answers 403 quota_exceeded, without Retry-After).
        var full = await Assert.ThrowsAsync<QuotaExceededException>(() =>
            SessionCalls.Get(Client, tenant, "three", ClusterFixture.Alpha).Create(new SessionSettings { Model = ClusterFixture.Alpha }));
        Assert.Contains("2 sessions", full.Message);

        await SessionCalls.Get(Client, tenant, "one", ClusterFixture.Alpha).Delete();
        await SessionCalls.Get(Client, tenant, "three", ClusterFixture.Alpha).Create(new SessionSettings { Model = ClusterFixture.Alpha });
        Assert.Equal(["three", "two"], await Client.GetGrain<ITenantGrain>(tenant).ListSessions());
    }

    [Fact]
    public async Task Streams_are_capped_and_tokens_per_minute_are_metered()
    {
        string tenant = await SessionCalls.NewTenant(Client, new TenantQuota { MaxConcurrentStreams = 1, TokensPerMinute = 100 });
        var grain = Client.GetGrain<ITenantGrain>(tenant);
        var first = await grain.BeginStream(ClusterFixture.Alpha);
        var busy = await Assert.ThrowsAsync<RetryLaterException>(() => grain.BeginStream(ClusterFixture.Alpha));
        Assert.True(busy.RetryAfterSeconds > 0);
        await grain.EndStream(first, ClusterFixture.Alpha, new TokenUsage(70, 40, 0));

        var spent = await Assert.ThrowsAsync<RetryLaterException>(() => grain.BeginStream(ClusterFixture.Alpha));
        Assert.Contains("100 tokens per minute", spent.Message);
        Assert.InRange(spent.RetryAfterSeconds, 1, 60);
        Assert.Equal([new ModelUsage(ClusterFixture.Alpha, 70, 40)], await grain.GetUsage());
    }

    [Fact]
    public async Task Session_turns_are_metered_and_count_against_the_stream_quota()
    {
        string tenant = await SessionCalls.NewTenant(Client, new TenantQuota { MaxConcurrentStreams = 1 });
        var first = SessionCalls.Get(Client, tenant, "first", ClusterFixture.Alpha);
        var second = SessionCalls.Get(Client, tenant, "second", ClusterFixture.Alpha);
        await first.Create(new SessionSettings { Model = ClusterFixture.Alpha });
        await second.Create(new SessionSettings { Model = ClusterFixture.Alpha });

        var reply = await SessionCalls.Reply(first, "Hello", maxNewTokens: 3);
        var usage = Assert.Single(await Client.GetGrain<ITenantGrain>(tenant).GetUsage());
        Assert.Equal(reply[^1].Usage!.PromptTokens, usage.PromptTokens);
        Assert.Equal(3, usage.CompletionTokens);

        await using var running = first.Send("Go on", new GenerationParameters { MaxNewTokens = 50 }).GetAsyncEnumerator();
        Assert.True(await running.MoveNextAsync()); // the first stream is open
        await Assert.ThrowsAsync<RetryLaterException>(() => SessionCalls.Reply(second, "Hi"));
    }

    [Fact]
    public async Task Deleting_a_tenant_deletes_its_sessions_so_the_ids_can_be_used_again()
    {
        string tenant = await SessionCalls.NewTenant(Client);
        var session = SessionCalls.Get(Client, tenant, "again", ClusterFixture.Alpha);
        await session.Create(new SessionSettings { Model = ClusterFixture.Alpha });
        await SessionCalls.Reply(session, "Hello there", maxNewTokens: 2);
        await Client.GetGrain<ITenantGrain>(tenant).Delete();
        await Assert.ThrowsAsync<SessionNotFoundException>(() => SessionCalls.Get(Client, tenant, "again", ClusterFixture.Alpha).GetTranscript());

        await Client.GetGrain<ITenantGrain>(tenant).Create();
        var reborn = SessionCalls.Get(Client, tenant, "again", ClusterFixture.Alpha);
        await reborn.Create(new SessionSettings { Model = ClusterFixture.Alpha });
        Assert.DoesNotContain((await reborn.GetTranscript()).Turns, t => t.Role != "system");
        Assert.Equal(["again"], await Client.GetGrain<ITenantGrain>(tenant).ListSessions());
    }
}
