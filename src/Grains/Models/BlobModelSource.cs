using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// Checkpoints in an Azure Blob container: <c>blob:container/path</c> names the folder of blobs under "path/".
/// They are downloaded into the local cache (cacheRoot/blob/container/path), resumed from a partial file with a
/// Range request, verified (size; Content-MD5 when the service has it; a "sha256" metadata entry when the uploader
/// set one) and reported as progress. The container and path are validated so no name can reach outside the cache.
/// </summary>
public sealed partial class BlobModelSource(BlobServiceClient service, string cacheRoot)
{
    public const string Prefix = "blob:";
    private const int MaxFiles = 1000;

    [GeneratedRegex("^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")]
    private static partial Regex ContainerPattern();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._-]*$")]
    private static partial Regex SegmentPattern();

    /// <summary>Splits and checks "blob:container/path"; throws <see cref="ArgumentException"/> naming what is wrong.</summary>
    public static (string Container, string Path) Parse(string source)
    {
        if (!source.StartsWith(Prefix, StringComparison.Ordinal)) throw new ArgumentException($"model source '{source}' does not start with {Prefix}", "model");
        var rest = source[Prefix.Length..].Trim('/');
        int slash = rest.IndexOf('/');
        string container = slash < 0 ? rest : rest[..slash], path = slash < 0 ? "" : rest[(slash + 1)..];
        if (!ContainerPattern().IsMatch(container))
            throw new ArgumentException($"model source '{source}': '{container}' is not a blob container name (3–63 lowercase letters, digits and single hyphens)", "model");
        if (path.Length == 0) throw new ArgumentException($"model source '{source}' names no folder inside the container", "model");
        foreach (var segment in path.Split('/'))
            if (!SegmentPattern().IsMatch(segment) || segment is "." or "..")
                throw new ArgumentException($"model source '{source}': path segment '{segment}' is not allowed (letters, digits, '.', '_', '-'; no '..')", "model");
        return (container, path);
    }

    public async Task<string> DownloadAsync(string source, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (containerName, path) = Parse(source);
        var container = service.GetBlobContainerClient(containerName);
        string target = System.IO.Path.Combine(cacheRoot, "blob", containerName, System.IO.Path.Combine(path.Split('/')));
        var blobs = new List<BlobItem>();
        try
        {
            await foreach (var item in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, path + "/", cancellationToken))
            {
                if (blobs.Count == MaxFiles) throw new ArgumentException($"model source '{source}' holds more than {MaxFiles} blobs", "model");
                blobs.Add(item);
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new ArgumentException($"model source '{source}': container '{containerName}' does not exist", "model", e);
        }
        if (blobs.Count == 0) throw new ArgumentException($"model source '{source}': no blobs under '{path}/'", "model");
        foreach (var item in blobs)
        {
            string relative = item.Name[(path.Length + 1)..];
            if (relative.Split('/').Any(s => !SegmentPattern().IsMatch(s) || s is "." or ".."))
                throw new ArgumentException($"model source '{source}': blob '{item.Name}' has a name that cannot be a local file", "model");
            string local = System.IO.Path.Combine(target, System.IO.Path.Combine(relative.Split('/')));
            await DownloadFileAsync(container.GetBlobClient(item.Name), item, local, progress, cancellationToken);
        }
        return target;
    }

    private static async Task DownloadFileAsync(BlobClient blob, BlobItem item, string local, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        long size = item.Properties.ContentLength ?? throw new InvalidDataException($"blob {item.Name} has no length");
        string name = item.Name;
        if (File.Exists(local) && new FileInfo(local).Length == size && await VerifiedAsync(local, item, cancellationToken)) return; // cached
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(local)!);
        string partial = local + ".partial";
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (have > size) { File.Delete(partial); have = 0; }
        if (have < size)
        {
            var response = await blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(have) }, cancellationToken);
            await using var input = response.Value.Content;
            await using var output = new FileStream(partial, FileMode.Append, FileAccess.Write);
            var buffer = new byte[1 << 20];
            int read;
            while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                have += read;
                progress?.Report(new DownloadProgress(name, have, size));
            }
        }
        if (new FileInfo(partial).Length != size) throw new InvalidDataException($"blob {name}: downloaded {new FileInfo(partial).Length} bytes, expected {size}");
        if (!await VerifiedAsync(partial, item, cancellationToken))
        {
            File.Delete(partial);
            throw new InvalidDataException($"blob {name}: the downloaded file does not match its checksum");
        }
        File.Move(partial, local, overwrite: true);
    }

    /// <summary>The file matches the blob's Content-MD5 and "sha256" metadata, where it has them.</summary>
    private static async Task<bool> VerifiedAsync(string file, BlobItem item, CancellationToken cancellationToken)
    {
        if (item.Properties.ContentHash is { Length: > 0 } md5)
        {
            await using var stream = File.OpenRead(file);
            if (!(await MD5.HashDataAsync(stream, cancellationToken)).AsSpan().SequenceEqual(md5)) return false;
        }
        if (item.Metadata is { } metadata && metadata.TryGetValue("sha256", out var sha))
        {
            await using var stream = File.OpenRead(file);
            if (!Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken)).Equals(sha, StringComparison.OrdinalIgnoreCase)) return false;
        }
        return true;
    }
}
