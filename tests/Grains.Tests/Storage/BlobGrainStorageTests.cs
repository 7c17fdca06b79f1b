using Azure.Storage.Blobs;
using Gpt2Orleans.Grains.Storage;
using Gpt2Orleans.Grains.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Storage;

namespace Gpt2Orleans.Grains.Tests.Storage;

/// <summary>The same contract against a real Azurite blob service; each test class instance uses its own container.</summary>
public sealed class BlobGrainStorageTests(AzuriteFixture azurite) : GrainStorageContract, IClassFixture<AzuriteFixture>, IAsyncLifetime
{
    private readonly string _container = "test-" + Guid.NewGuid().ToString("N");
    private BlobGrainStorage _storage = null!;

    protected override IGrainStorage Storage => _storage;

    public async Task InitializeAsync()
    {
        _storage = new BlobGrainStorage(azurite.ConnectionString, _container, Serializer(), NullLogger<BlobGrainStorage>.Instance);
        await _storage.EnsureContainerAsync();
    }

    public Task DisposeAsync() => new BlobContainerClient(azurite.ConnectionString, _container).DeleteIfExistsAsync();

    protected override async Task<IReadOnlyList<string>> StoredNames()
    {
        var names = new List<string>();
        await foreach (var blob in new BlobContainerClient(azurite.ConnectionString, _container).GetBlobsAsync()) names.Add(blob.Name);
        return names;
    }

    [Fact]
    public async Task The_container_is_created_at_start_up()
    {
        Assert.True(await new BlobContainerClient(azurite.ConnectionString, _container).ExistsAsync());
    }
}
