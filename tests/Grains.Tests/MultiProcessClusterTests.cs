using Gpt2Orleans.Grains.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Runtime;
using StackExchange.Redis;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>
/// The real thing: two gpt2o-silo processes form a cluster through a real Redis server (Debian's redis-server on a
/// free loopback port) and keep their state in Azure Blob storage (a real Azurite); one is killed with SIGKILL
/// mid-conversation and no persisted turn is lost. A standalone gpt2o-gateway process serves the cluster over HTTP.
/// </summary>
public sealed class MultiProcessClusterTests : IAsyncLifetime
{
    private readonly AzuriteFixture _azurite = new();
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gpt2o-multi-" + Guid.NewGuid().ToString("N"));
    private readonly string _clusterId = "test-" + Guid.NewGuid().ToString("N")[..8];
    private ServerProcess _redis = null!;
    private readonly List<ServerProcess> _silos = [];
    private readonly List<(int SiloPort, int GatewayPort)> _ports = [];
    private IHost _client = null!;
    private ServerProcess _gateway = null!;
    private Uri _gatewayUrl = null!;

    public async Task InitializeAsync()
    {
        await _azurite.InitializeAsync();
        int redisPort = ToolPaths.FreePort();
        _redis = await ServerProcess.StartAsync(ToolPaths.RedisServer,
            ["--port", redisPort.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], redisPort);
        for (int i = 0; i < 2; i++)
        {
            int siloPort = ToolPaths.FreePort(), gatewayPort = ToolPaths.FreePort();
            _ports.Add((siloPort, gatewayPort));
            _silos.Add(await ServerProcess.StartAsync("dotnet",
            [
                Path.Combine(AppContext.BaseDirectory, "gpt2o-silo.dll"),
                "--clustering", "redis", "--redis", $"127.0.0.1:{redisPort}", "--cluster-id", _clusterId,
                "--silo-port", siloPort.ToString(), "--gateway-port", gatewayPort.ToString(),
                "--storage", "azureblob", "--blob-connection-string", _azurite.ConnectionString, "--blob-container", _clusterId,
                "--data", Path.Combine(_root, "data"), "--kv-cache-mb", "16",
                "--model", $"{ClusterFixture.Alpha}={ClusterFixture.AlphaFolder}",
                "--urls", $"http://127.0.0.1:{ToolPaths.FreePort()}",
            ], gatewayPort, TimeSpan.FromSeconds(90), workingDirectory: AppContext.BaseDirectory));
        }
        int httpPort = ToolPaths.FreePort();
        _gatewayUrl = new Uri($"http://127.0.0.1:{httpPort}");
        _gateway = await ServerProcess.StartAsync("dotnet",
        [
            Path.Combine(AppContext.BaseDirectory, "gpt2o-gateway.dll"),
            "--redis", $"127.0.0.1:{redisPort}", "--cluster-id", _clusterId, "--urls", _gatewayUrl.ToString(),
        ], httpPort, TimeSpan.FromSeconds(60), workingDirectory: AppContext.BaseDirectory);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders(); // the killed silo makes the client log connection errors by design
        builder.UseOrleansClient(client =>
        {
            client.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse($"127.0.0.1:{redisPort}"));
            client.Services.Configure<ClusterOptions>(o => { o.ClusterId = _clusterId; o.ServiceId = "gpt2orleans"; });
        });
        _client = builder.Build();
        await _client.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _client.StopAsync(TimeSpan.FromSeconds(5));
        _client.Dispose();
        await _gateway.DisposeAsync();
        foreach (var silo in _silos) await silo.DisposeAsync();
        await _redis.DisposeAsync();
        await _azurite.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Killing_a_silo_process_loses_no_persisted_session()
    {
        var client = _client.Services.GetRequiredService<IClusterClient>();
        string tenant = await SessionCalls.NewTenant(client);
        string[] turns = ["Hello", "How are you?", "Tell me more"];
        var ids = Enumerable.Range(0, 6).Select(i => $"s{i}").ToList();
        foreach (var id in ids)
        {
            var session = SessionCalls.Get(client, tenant, id, ClusterFixture.Alpha);
            await session.Create(new SessionSettings { Model = ClusterFixture.Alpha });
            await SessionCalls.Reply(session, turns[0]);
            await SessionCalls.Reply(session, turns[1]);
        }

        var management = client.GetGrain<IManagementGrain>(0);
        var hosts = new List<SiloAddress>();
        foreach (var id in ids) hosts.Add((await management.GetActivationAddress(SessionCalls.Get(client, tenant, id, ClusterFixture.Alpha)))!);
        int victim = Enumerable.Range(0, 2).MaxBy(i => hosts.Count(h => h.Endpoint.Port == _ports[i].SiloPort));
        _silos[victim].Kill();

        var expected = SessionCalls.ExpectedReplies(ClusterFixture.AlphaFolder, null, turns);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120); // until the cluster declares the dead silo dead
        foreach (var id in ids)
        {
            var session = SessionCalls.Get(client, tenant, id, ClusterFixture.Alpha);
            while (true)
            {
                try
                {
                    Assert.Equal(4, (await session.GetTranscript()).Turns.Count);
                    Assert.Equal(expected[2], (await SessionCalls.Reply(session, turns[2])).Select(t => t.TokenId).ToList());
                    break;
                }
                catch (Exception e) when (e is not Xunit.Sdk.XunitException && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(500);
                }
            }
            Assert.Equal(6, (await session.GetTranscript()).Turns.Count);
        }
        Assert.False(_silos[1 - victim].HasExited, "the surviving silo stayed up");
        var stored = new List<string>();
        await foreach (var blob in new Azure.Storage.Blobs.BlobContainerClient(_azurite.ConnectionString, _clusterId).GetBlobsAsync()) stored.Add(blob.Name);
        Assert.Equal(ids.Count, stored.Count(name => name.StartsWith("session/"))); // the sessions live in blob storage
    }

    [Fact]
    public async Task A_standalone_gateway_serves_the_cluster_over_http()
    {
        var client = _client.Services.GetRequiredService<IClusterClient>();
        string tenant = await SessionCalls.NewTenant(client);
        var key = await client.GetGrain<ITenantGrain>(tenant).IssueKey();
        using var http = new HttpClient { BaseAddress = _gatewayUrl, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key.Key);
        static StringContent Json(object body) => new(System.Text.Json.JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");

        var models = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement.GetProperty("data");
        Assert.Equal(2, models[0].GetProperty("silos").GetArrayLength()); // both silos serve alpha

        var created = await http.PostAsync("/v1/sessions", Json(new { model = ClusterFixture.Alpha, temperature = 0, max_tokens = 4 }));
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        string id = System.Text.Json.JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        var reply = await http.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Hello" }));
        Assert.Equal(System.Net.HttpStatusCode.OK, reply.StatusCode);
        // The conversation is the cluster's: the session grain holds the turn the gateway answered.
        var answer = System.Text.Json.JsonDocument.Parse(await reply.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(4, answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var transcript = await SessionCalls.Get(client, tenant, id, ClusterFixture.Alpha).GetTranscript();
        Assert.Equal(2, transcript.Turns.Count);
        Assert.Equal(transcript.Turns[1].Text, answer.GetProperty("message").GetProperty("content").GetString());

        // Start-up says where to go.
        string root = _gatewayUrl.ToString().TrimEnd('/');
        Assert.Contains($"the API at {root}/v1, the playground at {root}/", _gateway.Log);

        string metrics = await http.GetStringAsync("/metrics");
        Assert.Equal(2, metrics.Split('\n').Count(l => l.StartsWith($"gpt2o_model_loaded{{model=\"{ClusterFixture.Alpha}\"", StringComparison.Ordinal) && l.EndsWith(" 1")));
    }
}
