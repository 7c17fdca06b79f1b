using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;

namespace Gpt2Orleans.Inference.Tests.Checkpoints;

public sealed class HubDownloaderTests : IDisposable
{
    private const string Repo = "tiny-org/tiny-gpt2";
    private readonly string _source = Directory.CreateTempSubdirectory("gpt2o-hub-src-").FullName;
    private readonly string _cache = Directory.CreateTempSubdirectory("gpt2o-hub-cache-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public HubDownloaderTests()
    {
        foreach (var file in Directory.GetFiles(GoldenData.ModelDir("lm"))) File.Copy(file, Path.Combine(_source, Path.GetFileName(file)));
        foreach (var file in Directory.GetFiles(Path.Combine(GoldenData.Root, "tokenizer"), "*.*").Where(f => !f.EndsWith(".md")))
            File.Copy(file, Path.Combine(_source, Path.GetFileName(file)));
    }

    [Fact]
    public async Task Downloads_a_repo_into_the_cache_with_progress_and_loads_it()
    {
        using var server = new LocalHubServer(Repo, _source);
        var progress = new List<DownloadProgress>();
        var hub = new HubDownloader(_http, server.Endpoint, _cache);
        string folder = await hub.DownloadAsync(Repo, progress: new InlineProgress(progress.Add));

        foreach (var file in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt" })
            Assert.True(File.Exists(Path.Combine(folder, file)), file);
        Assert.Contains(progress, p => p.File == "model.safetensors" && p.BytesDone == p.BytesTotal);
        using var downloaded = Gpt2LMHeadModel.FromPretrained(folder);
        using var local = Gpt2LMHeadModel.FromPretrained(GoldenData.ModelDir("lm"));
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(new long[] { 464, 3616 }, [1, 2]);
        Assert.True(downloaded.forward(ids).Logits.eq(local.forward(ids).Logits).all().item<bool>());

        // A second call is served from the cache.
        server.EtagOverride = _ => throw new InvalidOperationException("no request expected");
        Assert.Equal(folder, await hub.DownloadAsync(Repo));
    }

    [Fact]
    public async Task A_partial_download_resumes_with_a_range_request_and_is_verified()
    {
        using var server = new LocalHubServer(Repo, _source);
        var hub = new HubDownloader(_http, server.Endpoint, _cache);
        string folder = Path.Combine(_cache, "models--tiny-org--tiny-gpt2", "main");
        Directory.CreateDirectory(folder);
        var weights = await File.ReadAllBytesAsync(Path.Combine(_source, "model.safetensors"));
        await File.WriteAllBytesAsync(Path.Combine(folder, "model.safetensors.incomplete"), weights[..(weights.Length / 3)]);

        await hub.DownloadAsync(Repo);
        Assert.Contains("model.safetensors", server.RangeRequests);
        Assert.Equal(weights, await File.ReadAllBytesAsync(Path.Combine(folder, "model.safetensors")));
    }

    [Fact]
    public async Task Dropped_connections_are_retried_and_resume()
    {
        using var server = new LocalHubServer(Repo, _source) { DropNextRequests = 2 };
        var hub = new HubDownloader(_http, server.Endpoint, _cache);
        string folder = await hub.DownloadAsync(Repo);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(_source, "config.json")), await File.ReadAllBytesAsync(Path.Combine(folder, "config.json")));
        Assert.Equal(0, server.DropNextRequests);
        Assert.NotEmpty(server.RangeRequests); // the second try resumed the half-received file
    }

    [Fact]
    public async Task A_file_whose_sha256_does_not_match_is_discarded_with_a_clear_error()
    {
        using var server = new LocalHubServer(Repo, _source) { EtagOverride = f => f == "model.safetensors" ? new string('a', 64) : null };
        var hub = new HubDownloader(_http, server.Endpoint, _cache);
        var error = await Assert.ThrowsAsync<CheckpointException>(() => hub.DownloadAsync(Repo));
        Assert.Contains("sha256", error.Message);
        Assert.Empty(Directory.GetFiles(_cache, "model.safetensors*", SearchOption.AllDirectories));
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("a/b/c")]
    [InlineData("owner/..")]
    [InlineData("")]
    public async Task Invalid_repo_ids_are_rejected_before_any_request(string repo)
    {
        var hub = new HubDownloader(_http, "http://127.0.0.1:9", _cache);
        var error = await Assert.ThrowsAsync<CheckpointException>(() => hub.DownloadAsync(repo));
        Assert.Contains("repo id", error.Message);
    }

    [Fact]
    public async Task A_repo_the_server_does_not_have_is_a_clear_error()
    {
        using var server = new LocalHubServer(Repo, _source);
        var hub = new HubDownloader(_http, server.Endpoint, _cache);
        var error = await Assert.ThrowsAsync<CheckpointException>(() => hub.DownloadAsync("someone/missing"));
        Assert.Contains("404", error.Message);
    }

    private sealed class InlineProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_source, recursive: true);
        Directory.Delete(_cache, recursive: true);
    }
}
