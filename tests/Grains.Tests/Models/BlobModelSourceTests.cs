using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Gpt2Orleans.Grains.Models;
using Gpt2Orleans.Grains.Tests.Support;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;

namespace Gpt2Orleans.Grains.Tests.Models;

/// <summary>Checkpoints from an Azure Blob container (a real Azurite): downloaded, cached, resumed, verified, and names checked.</summary>
public sealed class BlobModelSourceTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>, IAsyncLifetime
{
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "gpt2o-blobcache-" + Guid.NewGuid().ToString("N"));
    private readonly string _container = "models-" + Guid.NewGuid().ToString("N")[..12];
    private BlobServiceClient Service => new(azurite.ConnectionString);

    public async Task InitializeAsync()
    {
        var container = Service.GetBlobContainerClient(_container);
        await container.CreateAsync();
        foreach (var file in Directory.GetFiles(ClusterFixture.AlphaFolder))
        {
            var bytes = await File.ReadAllBytesAsync(file);
            await container.GetBlobClient($"tiny/alpha/{Path.GetFileName(file)}").UploadAsync(new BinaryData(bytes), new BlobUploadOptions
            {
                Metadata = new Dictionary<string, string> { ["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)) },
            });
        }
    }

    public Task DisposeAsync()
    {
        try { Directory.Delete(_cache, recursive: true); } catch (IOException) { }
        return Service.GetBlobContainerClient(_container).DeleteIfExistsAsync();
    }

    private sealed class Recorder : IProgress<DownloadProgress>
    {
        public readonly List<DownloadProgress> Reports = [];
        public void Report(DownloadProgress value) { lock (Reports) Reports.Add(value); }
    }

    [Fact]
    public async Task A_blob_folder_downloads_once_verified_and_loads_as_a_model()
    {
        var store = new ModelStore(new HttpClient(), "http://127.0.0.1:1", _cache, Service);
        var progress = new Recorder();
        string? folder = await store.ResolveAsync($"blob:{_container}/tiny/alpha", progress);
        Assert.NotNull(folder);
        Assert.StartsWith(Path.GetFullPath(_cache), Path.GetFullPath(folder));
        foreach (var file in Directory.GetFiles(ClusterFixture.AlphaFolder))
            Assert.Equal(await File.ReadAllBytesAsync(file), await File.ReadAllBytesAsync(Path.Combine(folder, Path.GetFileName(file))));
        Assert.Contains(progress.Reports, p => p.File.EndsWith("model.safetensors") && p.BytesDone == p.BytesTotal);
        using (var model = Gpt2LMHeadModel.FromPretrained(folder)) Assert.Equal(64, model.Config.NEmbd);

        var again = new Recorder();
        Assert.Equal(folder, await store.ResolveAsync($"blob:{_container}/tiny/alpha", again));
        Assert.Empty(again.Reports); // served from the cache
    }

    [Fact]
    public async Task An_interrupted_download_resumes_from_its_partial_file()
    {
        var store = new ModelStore(new HttpClient(), "http://127.0.0.1:1", _cache, Service);
        string target = Path.Combine(_cache, "blob", _container, "tiny", "alpha");
        Directory.CreateDirectory(target);
        var weights = await File.ReadAllBytesAsync(Path.Combine(ClusterFixture.AlphaFolder, "model.safetensors"));
        int half = weights.Length / 2;
        await File.WriteAllBytesAsync(Path.Combine(target, "model.safetensors.partial"), weights[..half]);

        var progress = new Recorder();
        string folder = (await store.ResolveAsync($"blob:{_container}/tiny/alpha", progress))!;
        var weightReports = progress.Reports.Where(p => p.File.EndsWith("model.safetensors")).ToList();
        Assert.True(weightReports[0].BytesDone > half, "the download continued after the bytes already there");
        Assert.Equal(weights, await File.ReadAllBytesAsync(Path.Combine(folder, "model.safetensors")));
    }

    [Fact]
    public async Task A_blob_whose_content_does_not_match_its_checksum_is_refused()
    {
        var blob = Service.GetBlobContainerClient(_container).GetBlobClient("bad/one/config.json");
        await blob.UploadAsync(new BinaryData("{}"u8.ToArray()), new BlobUploadOptions { Metadata = new Dictionary<string, string> { ["sha256"] = new string('0', 64) } });
        var store = new ModelStore(new HttpClient(), "http://127.0.0.1:1", _cache, Service);
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => store.ResolveAsync($"blob:{_container}/bad/one"));
        Assert.Contains("checksum", error.Message);
        Assert.False(File.Exists(Path.Combine(_cache, "blob", _container, "bad", "one", "config.json")));
    }

    [Theory]
    [InlineData("blob:Models/x", "not a blob container name")]
    [InlineData("blob:models/../etc", "not allowed")]
    [InlineData("blob:models/a/..", "not allowed")]
    [InlineData("blob:models", "names no folder")]
    [InlineData("blob:ab/x", "not a blob container name")]
    public async Task Hostile_or_malformed_sources_are_refused_with_the_reason(string source, string expected)
    {
        var store = new ModelStore(new HttpClient(), "http://127.0.0.1:1", _cache, Service);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => store.ResolveAsync(source));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task A_missing_folder_or_container_is_a_clear_error()
    {
        var store = new ModelStore(new HttpClient(), "http://127.0.0.1:1", _cache, Service);
        Assert.Contains("no blobs under", (await Assert.ThrowsAsync<ArgumentException>(() => store.ResolveAsync($"blob:{_container}/nothing/here"))).Message);
        Assert.Contains("does not exist", (await Assert.ThrowsAsync<ArgumentException>(() => store.ResolveAsync("blob:no-such-container/x"))).Message);
    }
}
