using Gpt2Orleans.Grains.Hosting;
using Gpt2Orleans.Grains.Models;
using Orleans.TestingHost;

namespace Gpt2Orleans.Grains.Tests.Support;

/// <summary>
/// A cluster of its own for tests that stop silos: every silo serves "alpha", all share one file store in a
/// temporary folder. Disposing stops it and deletes the folder.
/// </summary>
public sealed class AlphaCluster : IAsyncDisposable
{
    private readonly string _storage = Path.Combine(Path.GetTempPath(), "gpt2o-alpha-" + Guid.NewGuid().ToString("N"));
    public InProcessTestCluster Cluster { get; private set; } = null!;

    /// <summary>Where a silo spills its conversations' KV.</summary>
    public string SpillDirectory(string siloName) => Path.Combine(_storage, "spill", siloName);

    public static async Task<AlphaCluster> StartAsync(short silos, int drainSeconds = 30)
    {
        var result = new AlphaCluster();
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSilo((options, silo) =>
        {
            silo.AddGpt2Orleans(new ModelHostOptions
            {
                Models = new() { [ClusterFixture.Alpha] = ClusterFixture.AlphaFolder },
                KvCacheBytes = 16L << 20,
                DrainSeconds = drainSeconds,
                SpillDirectory = result.SpillDirectory(options.SiloName),
            });
            silo.AddGpt2OrleansFileStorage(result._storage);
        });
        result.Cluster = builder.Build();
        await result.Cluster.DeployAsync();
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        try { Directory.Delete(_storage, recursive: true); } catch (IOException) { }
    }
}
