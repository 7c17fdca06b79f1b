using Gpt2Orleans.Grains.Tests.Support;
using Gpt2Orleans.Silo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>
/// The development tenant: only on one machine (localhost clustering) or where GPT2O_API_KEY is set; its generated
/// key is kept owner-only in the data directory, so restarts keep one key instead of adding one each time.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DevelopmentTenantTests(ClusterFixture fixture) : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "gpt2o-devtenant-" + Guid.NewGuid().ToString("N"));

    private Task Start(string clustering, string? key = null) =>
        new DevelopmentTenant(fixture.Client, new SiloSettings { Clustering = clustering, DataDirectory = _data },
            new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["GPT2O_API_KEY"] = key }).Build(),
            NullLogger<DevelopmentTenant>.Instance).StartAsync(CancellationToken.None);

    private ITenantGrain Dev => fixture.Client.GetGrain<ITenantGrain>(DevelopmentTenant.Tenant);

    public void Dispose()
    {
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task One_machine_keeps_one_generated_key_across_restarts_and_a_cluster_creates_no_tenant_by_itself()
    {
        if (await Dev.Exists()) await Dev.Delete();
        await Start("redis");
        Assert.False(await Dev.Exists()); // a production cluster: tenants come from the admin API

        await Start("localhost");
        await Start("localhost"); // a restart
        await Start("localhost");
        string path = Path.Combine(_data, DevelopmentTenant.KeyFile);
        string key = File.ReadAllText(path).Trim();
        Assert.Single(await Dev.ListKeys());
        Assert.Equal(DevelopmentTenant.Tenant, (await fixture.Client.GetGrain<IApiKeyGrain>(ApiKeys.Hash(key)).GetOwner())!.Tenant);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

        await Start("redis", key: "configured-key-123"); // explicitly configured: a cluster gets it too
        Assert.Equal(2, (await Dev.ListKeys()).Count);
        await Assert.ThrowsAsync<ArgumentException>(() => Start("localhost", key: "short"));
        await Dev.Delete();
    }
}
