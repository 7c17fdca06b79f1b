using Gpt2Orleans.Grains.Tests.Support;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>Three silos, two models on different subsets: placement, conversations, forks and tenant isolation.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterTests(ClusterFixture fixture)
{
    private IClusterClient Client => fixture.Client;

    private int InstanceOf(SiloAddress silo) =>
        fixture.Cluster.Silos.Select((handle, i) => (handle, i)).Single(s => s.handle.SiloAddress.Equals(silo)).i;

    [Fact]
    public async Task Sessions_and_model_workers_land_only_on_silos_that_serve_their_model()
    {
        string tenant = await SessionCalls.NewTenant(Client);
        var management = Client.GetGrain<IManagementGrain>(0);
        foreach (var model in new[] { ClusterFixture.Alpha, ClusterFixture.Beta })
            for (int i = 0; i < 6; i++)
            {
                var session = SessionCalls.Get(Client, tenant, $"{model}-{i}", model);
                await session.Create(new SessionSettings { Model = model });
                await SessionCalls.Reply(session, "Hello", maxNewTokens: 2);
                var silo = await management.GetActivationAddress(session);
                Assert.NotNull(silo);
                Assert.Contains(model, ClusterFixture.Served[InstanceOf(silo)]);
            }

        var catalog = await Client.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).ListModels();
        foreach (var info in catalog)
        {
            var expected = fixture.Cluster.Silos.Select((h, i) => (h, i)).Where(s => ClusterFixture.Served[s.i].Contains(info.Definition.Name))
                .Select(s => s.h.SiloAddress.ToParsableString()).Order().ToList();
            Assert.Equal(expected, info.Silos);
        }
    }

    private const string SystemPrompt = "You are a helpful assistant.";
    private static readonly string[] Turns = ["Hello there", "What is the weather like?", "Thanks, bye"];

    /// <summary>A new tenant's session of <paramref name="model"/> with <see cref="SystemPrompt"/>, and its tenant.</summary>
    private async Task<(string Tenant, ISessionGrain Session)> NewConversation(string id, string model = ClusterFixture.Alpha)
    {
        string tenant = await SessionCalls.NewTenant(Client);
        var session = SessionCalls.Get(Client, tenant, id, model);
        await session.Create(new SessionSettings { Model = model, SystemPrompt = SystemPrompt });
        return (tenant, session);
    }

    [Fact]
    public async Task A_conversation_of_several_turns_gives_the_inference_library_s_greedy_output()
    {
        var (_, session) = await NewConversation("chat");
        string[] turns = Turns;
        var replies = new List<List<int>>();
        foreach (var turn in turns) replies.Add((await SessionCalls.Reply(session, turn)).Select(t => t.TokenId).ToList());

        var expected = SessionCalls.ExpectedReplies(ClusterFixture.AlphaFolder, SystemPrompt, turns);
        Assert.Equal(expected, replies);
        var transcript = await session.GetTranscript();
        Assert.Equal(6, transcript.Turns.Count);
        Assert.Equal(turns, transcript.Turns.Where(t => t.Role == "user").Select(t => t.Text));
    }

    [Fact]
    public async Task A_forked_session_diverges_independently()
    {
        string tenant = await SessionCalls.NewTenant(Client);
        var original = SessionCalls.Get(Client, tenant, "original", ClusterFixture.Beta);
        await original.Create(new SessionSettings { Model = ClusterFixture.Beta });
        await SessionCalls.Reply(original, "Tell me a story");
        var forked = await original.Fork("branch");
        Assert.Equal("branch", forked.SessionId);
        Assert.Equal(2, forked.Turns.Count);

        var branch = SessionCalls.Get(Client, tenant, "branch", ClusterFixture.Beta);
        var dragons = (await SessionCalls.Reply(branch, "Make it about dragons")).Select(t => t.TokenId).ToList();
        var robots = (await SessionCalls.Reply(original, "Make it about robots")).Select(t => t.TokenId).ToList();

        var a = await original.GetTranscript();
        var b = await branch.GetTranscript();
        Assert.Equal(a.Turns.Take(2), b.Turns.Take(2));
        Assert.Equal("Make it about robots", a.Turns[2].Text);
        Assert.Equal("Make it about dragons", b.Turns[2].Text);
        Assert.Equal(SessionCalls.ExpectedReplies(fixture.BetaFolder, null, ["Tell me a story", "Make it about dragons"])[1], dragons);
        Assert.Equal(SessionCalls.ExpectedReplies(fixture.BetaFolder, null, ["Tell me a story", "Make it about robots"])[1], robots);
    }

    [Fact]
    public async Task A_tenant_cannot_read_continue_or_delete_another_tenant_s_session()
    {
        string owner = await SessionCalls.NewTenant(Client), intruder = await SessionCalls.NewTenant(Client);
        var session = SessionCalls.Get(Client, owner, "private", ClusterFixture.Alpha);
        await session.Create(new SessionSettings { Model = ClusterFixture.Alpha });
        await SessionCalls.Reply(session, "My secret is 42");

        var stolen = SessionCalls.Get(Client, intruder, "private", ClusterFixture.Alpha);
        await Assert.ThrowsAsync<SessionNotFoundException>(() => stolen.GetTranscript());
        await Assert.ThrowsAsync<SessionNotFoundException>(() => SessionCalls.Reply(stolen, "What is the secret?"));
        await Assert.ThrowsAsync<SessionNotFoundException>(() => stolen.Delete());
        Assert.DoesNotContain("private", await Client.GetGrain<ITenantGrain>(intruder).ListSessions());
        // A key naming the owner's tenant is refused by its form: no id holds a '/'.
        Assert.Throws<InvalidRequestException>(() => GrainKeys.Session(intruder, $"../{owner}/private"));

        Assert.Equal(2, (await session.GetTranscript()).Turns.Count);
    }

    [Fact]
    public async Task A_model_no_silo_serves_fails_fast_with_a_clear_error()
    {
        string tenant = await SessionCalls.NewTenant(Client);
        var session = SessionCalls.Get(Client, tenant, "nowhere", "gamma");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => session.Create(new SessionSettings { Model = "gamma" }));
        Assert.Contains("gamma", error.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task A_deactivated_session_restores_its_spilled_kv_and_continues_identically()
    {
        // "solo" has one serving silo, so the session comes back where it spilled (elsewhere it would re-prefill).
        var (tenant, session) = await NewConversation("spilled", ClusterFixture.Solo);
        string[] turns = Turns;
        await SessionCalls.Reply(session, turns[0]);
        await SessionCalls.Reply(session, turns[1]);
        int history = (await session.GetTranscript()).TokenCount;
        Assert.NotEqual(0, (history - 1) % 16); // so a prefix-cache hit (whole 16-token blocks) cannot pass for a restore

        string[] Spilled() => Directory.Exists(Path.Combine(fixture.StorageRoot, "spill"))
            ? Directory.GetFiles(Path.Combine(fixture.StorageRoot, "spill"), "*.kv", SearchOption.AllDirectories) : [];
        Assert.Empty(Spilled());
        await fixture.Cluster.DeactivateAsync(session);
        Assert.Single(Spilled());
        var reply = await SessionCalls.Reply(SessionCalls.Get(Client, tenant, "spilled", ClusterFixture.Solo), turns[2]);

        Assert.Equal(SessionCalls.ExpectedReplies(ClusterFixture.AlphaFolder, SystemPrompt, turns)[2], reply.Select(t => t.TokenId).ToList());
        Assert.Equal(history - 1, reply[^1].Usage!.CachedPromptTokens); // the whole history came back from disk
        Assert.Empty(Spilled()); // a spill file is used once
    }

    [Fact]
    public async Task A_fork_s_first_turn_shares_its_source_s_kv_instead_of_recomputing_it()
    {
        var (tenant, source) = await NewConversation("trunk", ClusterFixture.Solo);
        await SessionCalls.Reply(source, Turns[0]);
        int history = (await source.GetTranscript()).TokenCount;
        Assert.NotEqual(0, (history - 1) % 16); // so a prefix-cache hit (whole 16-token blocks) cannot pass for a shared KV
        await source.Fork("twig");

        var branch = await SessionCalls.Reply(SessionCalls.Get(Client, tenant, "twig", ClusterFixture.Solo), Turns[1]);
        var trunk = await SessionCalls.Reply(source, Turns[2]);

        Assert.Equal(history - 1, branch[^1].Usage!.CachedPromptTokens);
        Assert.Equal(history - 1, trunk[^1].Usage!.CachedPromptTokens); // the source kept its own KV
        Assert.Equal(SessionCalls.ExpectedReplies(ClusterFixture.AlphaFolder, SystemPrompt, [Turns[0], Turns[1]])[1], branch.Select(t => t.TokenId).ToList());
        Assert.Equal(SessionCalls.ExpectedReplies(ClusterFixture.AlphaFolder, SystemPrompt, [Turns[0], Turns[2]])[1], trunk.Select(t => t.TokenId).ToList());
    }
}
