using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Storage;

namespace Gpt2Orleans.Grains.Storage;

/// <summary>
/// Grain state in Azure Blob Storage: one blob per grain state (named by <see cref="GrainStateNames"/>), optimistic
/// concurrency on the blob's ETag (a write or delete whose ETag no longer matches fails with
/// <see cref="InconsistentStateException"/>; a first write only succeeds if no blob exists yet). The container is
/// created when the silo starts; transient faults are retried by the Azure SDK's exponential retry policy.
/// Ours because Microsoft.Orleans.Persistence.AzureStorage does not restore here.
/// </summary>
public sealed class BlobGrainStorage : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>
{
    private readonly BlobContainerClient _container;
    private readonly IGrainStorageSerializer _serializer;
    private readonly ILogger _logger;

    public BlobGrainStorage(string connectionString, string container, IGrainStorageSerializer serializer, ILogger<BlobGrainStorage> logger)
    {
        var options = new BlobClientOptions();
        options.Retry.Mode = Azure.Core.RetryMode.Exponential;
        options.Retry.MaxRetries = 5;
        options.Retry.Delay = TimeSpan.FromMilliseconds(200);
        options.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);
        _container = new BlobContainerClient(connectionString, container, options);
        _serializer = serializer;
        _logger = logger;
    }

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(BlobGrainStorage), ServiceLifecycleStage.ApplicationServices, EnsureContainerAsync);

    public async Task EnsureContainerAsync(CancellationToken cancellationToken = default)
    {
        await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        _logger.LogInformation("Grain state in blob container {Container}", _container.Name);
    }

    private BlobClient Blob(string stateName, GrainId grainId)
    {
        var (folder, name) = GrainStateNames.Of(stateName, grainId);
        return _container.GetBlobClient($"{folder}/{name}.bin");
    }

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        try
        {
            var response = await Blob(stateName, grainId).DownloadContentAsync();
            grainState.State = _serializer.Deserialize<T>(response.Value.Content) ?? Activator.CreateInstance<T>();
            grainState.ETag = response.Value.Details.ETag.ToString();
            grainState.RecordExists = true;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            grainState.State = Activator.CreateInstance<T>();
            grainState.ETag = null;
            grainState.RecordExists = false;
        }
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var conditions = grainState.ETag is { } etag ? new BlobRequestConditions { IfMatch = new ETag(etag) } : new BlobRequestConditions { IfNoneMatch = ETag.All };
        try
        {
            var response = await Blob(stateName, grainId).UploadAsync(_serializer.Serialize(grainState.State), new BlobUploadOptions { Conditions = conditions });
            grainState.ETag = response.Value.ETag.ToString();
            grainState.RecordExists = true;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            throw new InconsistentStateException($"the stored state of {grainId} ({stateName}) changed since it was read", "(changed)", grainState.ETag ?? "(none)", e);
        }
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var conditions = grainState.ETag is { } etag ? new BlobRequestConditions { IfMatch = new ETag(etag) } : null;
        try
        {
            await Blob(stateName, grainId).DeleteIfExistsAsync(conditions: conditions);
            grainState.ETag = null;
            grainState.RecordExists = false;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            throw new InconsistentStateException($"the stored state of {grainId} ({stateName}) changed since it was read", "(changed)", grainState.ETag ?? "(none)", e);
        }
    }
}
