using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// Where checkpoints come from: a local folder, an Azure Blob container (<see cref="BlobModelSource"/>), the Hugging
/// Face hub (downloaded into the local cache, resumable and verified by <see cref="HubDownloader"/>), or "default"
/// (GPT-2 small with random weights, no download). Resolves a source to a local folder, or null for the default model.
/// </summary>
public sealed class ModelStore(HttpClient http, string hubEndpoint, string cacheRoot, Azure.Storage.Blobs.BlobServiceClient? blobs = null)
{
    public const string DefaultSource = "default";

    /// <param name="blobConnectionString">where <c>blob:</c> sources live (null: none)</param>
    public static ModelStore CreateDefault(string? blobConnectionString = null) =>
        new(new HttpClient { Timeout = TimeSpan.FromMinutes(30) }, HubDownloader.DefaultEndpoint, HubDownloader.DefaultCacheRoot,
            blobConnectionString is null ? null : new Azure.Storage.Blobs.BlobServiceClient(blobConnectionString));

    public async Task<string?> ResolveAsync(string source, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (source is DefaultSource or DefaultModel.Name) return null;
        if (Directory.Exists(source)) return Path.GetFullPath(source);
        if (source.StartsWith(BlobModelSource.Prefix, StringComparison.Ordinal))
        {
            BlobModelSource.Parse(source);
            if (blobs is null) throw new ArgumentException($"model source '{source}': blob sources need --blob-connection-string", "model");
            return await new BlobModelSource(blobs, cacheRoot).DownloadAsync(source, progress, cancellationToken);
        }
        if (!HubDownloader.IsRepoId(source))
            throw new ArgumentException($"model source '{source}' is neither an existing folder, 'default', nor a Hugging Face repo id", "model");
        return await new HubDownloader(http, hubEndpoint, cacheRoot).DownloadAsync(source, progress: progress, cancellationToken: cancellationToken);
    }
}
