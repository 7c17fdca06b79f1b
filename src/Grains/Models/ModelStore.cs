using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// Where checkpoints come from: a local folder, the Hugging Face hub (downloaded into the local cache, resumable and
/// verified by <see cref="HubDownloader"/>), or "default" (GPT-2 small with random weights, no download).
/// Resolves a source to a local folder, or null for the default model.
/// </summary>
public sealed class ModelStore(HttpClient http, string hubEndpoint, string cacheRoot)
{
    public const string DefaultSource = "default";

    public static ModelStore CreateDefault() =>
        new(new HttpClient { Timeout = TimeSpan.FromMinutes(30) }, HubDownloader.DefaultEndpoint, HubDownloader.DefaultCacheRoot);

    public async Task<string?> ResolveAsync(string source, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (source is DefaultSource or DefaultModel.Name) return null;
        if (Directory.Exists(source)) return Path.GetFullPath(source);
        if (source.StartsWith("blob:", StringComparison.Ordinal))
            throw new ArgumentException($"model source '{source}': blob sources need a silo configured with Azure Blob storage", "model");
        if (!HubDownloader.IsRepoId(source))
            throw new ArgumentException($"model source '{source}' is neither an existing folder, 'default', nor a Hugging Face repo id", "model");
        return await new HubDownloader(http, hubEndpoint, cacheRoot).DownloadAsync(source, progress: progress, cancellationToken: cancellationToken);
    }
}
