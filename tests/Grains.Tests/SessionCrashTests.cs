using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Gpt2Orleans.Grains.Tests.Support;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>
/// A real silo process with file storage, killed (SIGKILL) while clients create and delete sessions as fast as they
/// can, then started again on the same data: every session it lists can be read and deleted, and no temporary file
/// of an interrupted write is left.
/// </summary>
public sealed class SessionCrashTests : IAsyncLifetime
{
    private const string Key = "g2o-crash-test-key-0123";
    private readonly string _data = Path.Combine(Path.GetTempPath(), "gpt2o-crash-" + Guid.NewGuid().ToString("N"));
    private ServerProcess? _silo;

    private async Task<HttpClient> StartSilo()
    {
        int http = ToolPaths.FreePort();
        _silo = await ServerProcess.StartAsync("dotnet",
        [
            Path.Combine(AppContext.BaseDirectory, "gpt2o-silo.dll"),
            "--data", _data, "--silo-port", ToolPaths.FreePort().ToString(), "--gateway-port", ToolPaths.FreePort().ToString(),
            "--kv-cache-mb", "16", "--model", $"{ClusterFixture.Alpha}={ClusterFixture.AlphaFolder}",
            "--urls", $"http://127.0.0.1:{http}", "--GPT2O_API_KEY", Key,
        ], http, TimeSpan.FromSeconds(90), workingDirectory: AppContext.BaseDirectory);
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http}"), Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        // Ready: the development tenant exists once a listing answers.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((await TryList(client)) is null)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the silo did not answer: {_silo.Log}");
            await Task.Delay(200);
        }
        return client;
    }

    private static async Task<List<string>?> TryList(HttpClient client)
    {
        try
        {
            var response = await client.GetAsync("/v1/sessions");
            if (response.StatusCode != HttpStatusCode.OK) return null;
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("data").EnumerateArray()
                .Select(s => s.GetProperty("id").GetString()!).ToList();
        }
        catch (HttpRequestException) { return null; }
    }

    [Fact]
    public async Task Killed_during_create_and_delete_churn_every_listed_session_is_readable_and_deletable_after_a_restart()
    {
        var client = await StartSilo();
        using var stop = new CancellationTokenSource();
        int created = 0;
        var workers = Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    string id = $"w{w}-{random.Next(1_000_000)}";
                    var body = new StringContent(JsonSerializer.Serialize(new { model = ClusterFixture.Alpha, id, system_prompt = "You are terse." }), Encoding.UTF8, "application/json");
                    if ((await client.PostAsync("/v1/sessions", body, stop.Token)).StatusCode == HttpStatusCode.Created) Interlocked.Increment(ref created);
                    if (random.Next(2) == 0) await client.DeleteAsync($"/v1/sessions/{id}", stop.Token);
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException) { } // the kill cuts requests off
            }
        })).ToList();
        await Task.Delay(TimeSpan.FromSeconds(4));
        _silo!.Kill();
        stop.Cancel();
        await Task.WhenAll(workers);
        Assert.True(created > 20, $"only {created} sessions were created before the kill: the churn proved little");
        await _silo.DisposeAsync();

        client = await StartSilo();
        Assert.Empty(Directory.GetFiles(_data, "*.tmp", SearchOption.AllDirectories));
        var listed = await TryList(client) ?? throw new InvalidOperationException("no list");
        Assert.NotEmpty(listed);
        foreach (var id in listed)
        {
            var read = await client.GetAsync($"/v1/sessions/{id}");
            Assert.True(read.StatusCode == HttpStatusCode.OK, $"listed session {id} reads as {(int)read.StatusCode}: {await read.Content.ReadAsStringAsync()}");
            var deleted = await client.DeleteAsync($"/v1/sessions/{id}");
            Assert.True(deleted.StatusCode == HttpStatusCode.OK, $"listed session {id} deletes as {(int)deleted.StatusCode}");
        }
        Assert.Empty(await TryList(client) ?? ["no list"]);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>IAsyncLifetime, not IAsyncDisposable: xUnit 2 calls only the former on a test class, and the restarted silo must end here.</summary>
    public async Task DisposeAsync()
    {
        if (_silo is not null) await _silo.DisposeAsync();
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }
}
