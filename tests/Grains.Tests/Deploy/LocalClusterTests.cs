using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Gpt2Orleans.Grains.Tests.Support;
using Gpt2Orleans.Tests.Shared;

namespace Gpt2Orleans.Grains.Tests.Deploy;

/// <summary>
/// deploy/local/cluster.sh as an operator runs it: <c>up 2</c> starts Redis, Azurite, two silos and the gateway as
/// processes and prints the cluster as JSON; sessions talk through the gateway over HTTP; one silo is SIGKILLed and
/// every session's next turn succeeds with none of its earlier turns lost; <c>down</c> leaves no process behind.
/// The silos and the gateway are this build's (the containers' entry points: dotnet gpt2o-silo.dll, gpt2o-gateway.dll).
/// </summary>
[Collection(LocalClusterCollection.Name)]
public sealed class LocalClusterTests : IDisposable
{
    private readonly string _state = Path.Combine(Path.GetTempPath(), "gpt2o-local-" + Guid.NewGuid().ToString("N"));
    private static string Script => Path.Combine(Repository.Root, "deploy", "local", "cluster.sh");

    private (int ExitCode, string Output) Run(TimeSpan timeout, params string[] arguments)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Script);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        info.Environment["GPT2O_CLUSTER_DIR"] = _state;
        info.Environment["GPT2O_SILO_DLL"] = Path.Combine(AppContext.BaseDirectory, "gpt2o-silo.dll");
        info.Environment["GPT2O_GATEWAY_DLL"] = Path.Combine(AppContext.BaseDirectory, "gpt2o-gateway.dll");
        info.Environment["GPT2O_DRAIN_SECONDS"] = "5";
        info.Environment["GPT2O_READY_SECONDS"] = "180";
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"cluster.sh {string.Join(' ', arguments)} did not finish within {timeout}: {error.Result}");
        }
        return (process.ExitCode, output.Result + error.Result);
    }

    private static bool Alive(int pid)
    {
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
    }

    public void Dispose()
    {
        try { Run(TimeSpan.FromSeconds(120), "down"); } catch (TimeoutException) { }
        try { Directory.Delete(_state, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void Bad_arguments_are_refused_with_exit_code_2()
    {
        var (code, output) = Run(TimeSpan.FromSeconds(30), "up", "zero");
        Assert.Equal(2, code);
        Assert.Contains("error: up needs the number of silos", output);
        (code, output) = Run(TimeSpan.FromSeconds(30), "sideways");
        Assert.Equal(2, code);
        Assert.Contains("usage:", output);
    }

    [Fact]
    public async Task Two_silos_and_a_gateway_survive_a_killed_silo_and_go_down_without_a_trace()
    {
        var (code, output) = Run(TimeSpan.FromSeconds(240), "up", "2", "--model", $"{ClusterFixture.Alpha}={ClusterFixture.AlphaFolder}");
        Assert.True(code == 0, $"cluster.sh up failed ({code}): {output}");
        var cluster = JsonDocument.Parse(output.TrimEnd().Split('\n')[^1]).RootElement; // its last line
        var silos = cluster.GetProperty("silo_pids").EnumerateArray().Select(p => p.GetInt32()).ToList();
        var all = silos.Concat(new[] { "gateway_pid", "redis_pid", "azurite_pid" }.Select(k => cluster.GetProperty(k).GetInt32())).ToList();
        Assert.Equal(2, silos.Count);
        Assert.All(all, pid => Assert.True(Alive(pid), $"process {pid} is not running"));

        using var http = new HttpClient { BaseAddress = new Uri(cluster.GetProperty("gateway").GetString()!), Timeout = TimeSpan.FromSeconds(20) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", cluster.GetProperty("api_key").GetString());
        static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        var models = JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement.GetProperty("data");
        Assert.Equal(2, models[0].GetProperty("silos").GetArrayLength()); // both silos serve it

        // Six sessions, placed by Orleans across both silos, two turns each.
        var sessions = new List<string>();
        for (int i = 0; i < 6; i++)
        {
            var created = await http.PostAsync("/v1/sessions", Json(new { model = ClusterFixture.Alpha, temperature = 0, max_tokens = 4 }));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            string id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
            foreach (var turn in new[] { "Hello", "How are you?" })
                Assert.Equal(HttpStatusCode.OK, (await http.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = turn }))).StatusCode);
            sessions.Add(id);
        }

        Process.GetProcessById(silos[0]).Kill(); // SIGKILL: a crash, as far as the cluster can tell

        // Until the cluster declares the silo dead a call to it can fail or time out; each session's next turn then succeeds.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        foreach (var id in sessions)
            while (true)
            {
                try
                {
                    var reply = await http.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Tell me more" }));
                    if (reply.StatusCode == HttpStatusCode.OK) break;
                    Assert.True(DateTime.UtcNow < deadline, $"session {id}: {reply.StatusCode} {await reply.Content.ReadAsStringAsync()}");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && DateTime.UtcNow < deadline) { }
                await Task.Delay(500);
            }
        foreach (var id in sessions)
        {
            var messages = JsonDocument.Parse(await http.GetStringAsync($"/v1/sessions/{id}")).RootElement.GetProperty("messages");
            Assert.Equal(6, messages.GetArrayLength()); // three user turns and three replies: nothing persisted was lost
        }
        Assert.True(Alive(silos[1]), "the other silo stayed up");

        (code, output) = Run(TimeSpan.FromSeconds(120), "down");
        Assert.True(code == 0, $"cluster.sh down failed: {output}");
        Assert.All(all, pid => Assert.False(Alive(pid), $"process {pid} outlived down"));
    }
}

/// <summary>
/// Alone, after the in-process clusters: five processes starting and loading models on two cores slowed a drain test
/// running beside them past Orleans' 30 s response timeout (seen once in CI).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LocalClusterCollection
{
    public const string Name = "local cluster";
}
