using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>Bytes of one file received so far (total when the server said).</summary>
public sealed record DownloadProgress(string File, long BytesDone, long? BytesTotal);

/// <summary>
/// Downloads a GPT-2 checkpoint from the Hugging Face hub (or any server with its URL layout,
/// <c>{endpoint}/{repo}/resolve/{revision}/{file}</c>, e.g. a mirror named by <c>HF_ENDPOINT</c>) into a local
/// cache. Downloads resume from a partial file, are checked against the server's size and sha256 (the ETag of
/// LFS files) and only then renamed into place, so the cache never holds a truncated or corrupt file.
/// </summary>
public sealed partial class HubDownloader(HttpClient http, string endpoint, string cacheRoot)
{
    private static readonly string[] TokenizerFiles = ["vocab.json", "merges.txt"];

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95})?$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]
    private static partial Regex RevisionPattern();

    [GeneratedRegex(@"^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();

    public static string DefaultEndpoint =>
        Environment.GetEnvironmentVariable("HF_ENDPOINT") is { Length: > 0 } e ? e.TrimEnd('/') : "https://huggingface.co";

    public static string DefaultCacheRoot =>
        Environment.GetEnvironmentVariable("GPT2O_HUB_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "gpt2orleans", "hub");

    public static bool IsRepoId(string text) => RepoIdPattern().IsMatch(text) && !text.Contains("..");

    /// <summary>Downloads (or finds in the cache) config, weights and tokenizer files; returns the local folder.</summary>
    public async Task<string> DownloadAsync(string repoId, string revision = "main", IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (!IsRepoId(repoId)) throw new CheckpointException($"'{repoId}' is not a valid Hugging Face repo id (owner/name)");
        if (!RevisionPattern().IsMatch(revision) || revision.Contains("..")) throw new CheckpointException($"'{revision}' is not a valid revision");
        string folder = Path.Combine(cacheRoot, "models--" + repoId.Replace("/", "--"), revision);
        Directory.CreateDirectory(folder);

        await FetchAsync(repoId, revision, "config.json", folder, required: true, progress, cancellationToken);
        if (!await FetchAsync(repoId, revision, "model.safetensors", folder, required: false, progress, cancellationToken))
        {
            if (!await FetchAsync(repoId, revision, "model.safetensors.index.json", folder, required: false, progress, cancellationToken))
                throw new CheckpointException($"{repoId}@{revision}: the repository has no model.safetensors (only safetensors weights are supported)");
            foreach (var shard in ShardNames(Path.Combine(folder, "model.safetensors.index.json")))
                await FetchAsync(repoId, revision, shard, folder, required: true, progress, cancellationToken);
        }
        foreach (var file in TokenizerFiles) await FetchAsync(repoId, revision, file, folder, required: false, progress, cancellationToken);
        await FetchAsync(repoId, revision, "generation_config.json", folder, required: false, progress, cancellationToken);
        return folder;
    }

    private static IEnumerable<string> ShardNames(string indexPath)
    {
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(indexPath));
        var names = document.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Value.GetString()!).Distinct().ToList();
        foreach (var name in names)
            if (name != Path.GetFileName(name) || name.StartsWith('.'))
                throw new CheckpointException($"{indexPath}: shard name '{name}' must be a plain file name");
        return names;
    }

    /// <summary>Attempts per file: a dropped connection is retried (resuming from the partial file), an HTTP error is not.</summary>
    public const int Attempts = 4;

    /// <returns>false when the file does not exist on the server (and is not required)</returns>
    private async Task<bool> FetchAsync(string repoId, string revision, string file, string folder, bool required,
        IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            try { return await FetchOnceAsync(repoId, revision, file, folder, required, progress, cancellationToken); }
            catch (Exception e) when (e is HttpRequestException or IOException && attempt < Attempts && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), cancellationToken);
            }
        }
    }

    private async Task<bool> FetchOnceAsync(string repoId, string revision, string file, string folder, bool required,
        IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        string target = Path.Combine(folder, file);
        if (File.Exists(target)) return true;
        string partial = target + ".incomplete";
        long existing = File.Exists(partial) ? new FileInfo(partial).Length : 0;

        var url = $"{endpoint.TrimEnd('/')}/{repoId}/resolve/{Uri.EscapeDataString(revision)}/{file}";
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (existing > 0) request.Headers.Range = new RangeHeaderValue(existing, null);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound && !required) return false;
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) { File.Delete(partial); return await FetchOnceAsync(repoId, revision, file, folder, required, progress, cancellationToken); }
        if (!response.IsSuccessStatusCode)
            throw new CheckpointException($"{url}: the server answered {(int)response.StatusCode} {response.ReasonPhrase}");

        bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
        if (!resumed) existing = 0;
        long? total = resumed ? response.Content.Headers.ContentRange?.Length : response.Content.Headers.ContentLength;
        string? sha256 = ExpectedSha256(response);

        await using (var output = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None))
        await using (var input = await response.Content.ReadAsStreamAsync(cancellationToken))
        {
            var buffer = new byte[1 << 20];
            long done = existing;
            int read;
            while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                done += read;
                progress?.Report(new DownloadProgress(file, done, total));
            }
        }
        Verify(url, partial, total, sha256);
        File.Move(partial, target, overwrite: true);
        return true;
    }

    /// <summary>The hub's ETag of an LFS file (X-Linked-Etag behind a redirect) is the file's sha256.</summary>
    private static string? ExpectedSha256(HttpResponseMessage response)
    {
        var values = response.Headers.TryGetValues("X-Linked-Etag", out var linked) ? linked : response.Headers.ETag is { } e ? [e.Tag] : [];
        foreach (var value in values)
        {
            string tag = value.Replace("W/", "").Trim('"');
            if (Sha256Pattern().IsMatch(tag)) return tag;
        }
        return null;
    }

    private static void Verify(string url, string path, long? size, string? sha256)
    {
        long actual = new FileInfo(path).Length;
        if (size is { } expected && actual != expected)
            throw new CheckpointException($"{url}: received {actual} bytes, expected {expected} (run again to resume)");
        if (sha256 is null) return;
        using var stream = File.OpenRead(path);
        string hash = Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
        if (hash != sha256)
        {
            File.Delete(path);
            throw new CheckpointException($"{url}: sha256 {hash} does not match the server's {sha256}; the partial download was discarded");
        }
    }
}
