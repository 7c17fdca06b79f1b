using Gpt2Orleans.Grains.Tests.Support;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>Graceful shutdown: a stopping silo refuses new generations, lets the running stream finish and persist, and spills its KV.</summary>
public sealed class DrainTests : IAsyncLifetime
{
    private AlphaCluster _alpha = null!;
    private InProcessTestCluster Cluster => _alpha.Cluster;

    public async Task InitializeAsync() => _alpha = await AlphaCluster.StartAsync(2);

    public async Task DisposeAsync() => await _alpha.DisposeAsync();

    [Fact]
    public async Task A_stream_running_when_its_silo_stops_finishes_and_its_turn_is_kept()
    {
        var client = Cluster.Client;
        string tenant = await SessionCalls.NewTenant(client);
        var management = client.GetGrain<IManagementGrain>(0);
        // A session on the secondary silo (the primary hosts the test cluster's membership).
        var secondary = Cluster.Silos[1];
        ISessionGrain? session = null;
        string id = "";
        for (int i = 0; session is null && i < 40; i++)
        {
            id = $"s{i}";
            var candidate = SessionCalls.Get(client, tenant, id, ClusterFixture.Alpha);
            await candidate.Create(new SessionSettings { Model = ClusterFixture.Alpha });
            if (secondary.SiloAddress.Equals(await management.GetActivationAddress(candidate))) session = candidate;
        }
        Assert.NotNull(session);

        var tokens = new List<GeneratedToken>();
        Task stop = Task.CompletedTask;
        await foreach (var token in session.Send("Tell me a long story", new GenerationParameters { MaxNewTokens = 100, EosTokenIds = [], StopStrings = [] }))
        {
            tokens.Add(token);
            if (tokens.Count == 3) stop = Cluster.StopSiloAsync(secondary); // shutdown begins mid-stream
            if (tokens.Count == 4) await AssertRefusesNewWork(client.GetGrain<IModelGrain>(GrainKeys.ModelWorker(ClusterFixture.Alpha, secondary.SiloAddress.ToParsableString())));
            // A slow reader: the engine finishes the sequence long before the stream has been read to its end, and the
            // silo must still wait for it (it once deactivated the session mid-stream once the engine was done).
            if (tokens.Count > 4) await Task.Delay(10);
        }
        await stop;

        // The stopping silo spilled the conversation's kept KV to its disk itself (its sessions' calls no longer reach it).
        var spilled = Directory.Exists(_alpha.SpillDirectory(secondary.Name)) ? Directory.GetFiles(_alpha.SpillDirectory(secondary.Name), "*.kv") : [];
        Assert.Single(spilled);
        Assert.Equal(100, tokens.Count);
        Assert.Equal("length", tokens[^1].FinishReason);
        var transcript = await SessionCalls.Get(client, tenant, id, ClusterFixture.Alpha).GetTranscript(); // now on the other silo, from storage
        Assert.Equal(["user", "assistant"], transcript.Turns.Select(t => t.Role));
        Assert.Equal(string.Concat(tokens.Select(t => t.Text)).Trim(), transcript.Turns[1].Text);
    }

    /// <summary>While draining, the stopping silo's model worker refuses new generations with a retryable error.</summary>
    private static async Task AssertRefusesNewWork(IModelGrain worker)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            try
            {
                await foreach (var _ in worker.Generate(new ModelRequest { Tenant = "probe", PromptIds = [464], Parameters = new() { MaxNewTokens = 1 } })) { }
            }
            catch (RetryLaterException e)
            {
                Assert.Contains("shutting down", e.Message);
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, "the stopping silo kept admitting new generations");
            await Task.Delay(20);
        }
    }
}
