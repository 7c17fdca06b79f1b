using Gpt2Orleans.Grains.Hosting;
using Gpt2Orleans.Grains.Models;
using Gpt2Orleans.Inference.Model;
using Orleans.TestingHost;

namespace Gpt2Orleans.Grains.Tests.Support;

/// <summary>
/// An in-process cluster of three silos sharing one file store: silo 0 serves "alpha" and "sentiment", silo 1 serves
/// "alpha" and "beta", silo 2 serves "beta", "tagger" and "solo". alpha is the golden tiny checkpoint; beta a tiny
/// model with other weights; sentiment and tagger the golden sequence- and token-classification checkpoints; solo
/// alpha's weights on one silo only (so a reactivated session must land where it was).
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public const string Alpha = "alpha", Beta = "beta", Sentiment = "sentiment", Tagger = "tagger", Solo = "solo";
    public static readonly string AlphaFolder = Path.Combine(AppContext.BaseDirectory, "Models", "alpha");
    public static readonly string SentimentFolder = Path.Combine(AppContext.BaseDirectory, "Models", "sentiment");
    public static readonly string TaggerFolder = Path.Combine(AppContext.BaseDirectory, "Models", "tagger");
    public string BetaFolder { get; } = Path.Combine(Path.GetTempPath(), "gpt2o-grains-" + Guid.NewGuid().ToString("N"), "beta");
    public string StorageRoot { get; }
    public InProcessTestCluster Cluster { get; private set; } = null!;
    public IClusterClient Client => Cluster.Client;

    /// <summary>Which models each silo (by instance number) serves.</summary>
    public static readonly string[][] Served = [[Alpha, Sentiment], [Alpha, Beta], [Beta, Tagger, Solo]];

    public ClusterFixture() => StorageRoot = Path.Combine(Path.GetDirectoryName(BetaFolder)!, "store");

    public async Task InitializeAsync()
    {
        using (var alpha = Gpt2LMHeadModel.FromPretrained(AlphaFolder))
        using (var beta = Gpt2LMHeadModel.CreateRandom(alpha.Config, seed: 7))
            beta.SavePretrained(BetaFolder);
        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((options, silo) =>
        {
            int instance = options.SiloName == "Primary" ? 0 : int.Parse(options.SiloName.Split('_')[^1]);
            var models = Served[instance].ToDictionary(m => m, m => m switch
            {
                Alpha or Solo => AlphaFolder,
                Beta => BetaFolder,
                Sentiment => SentimentFolder,
                _ => TaggerFolder,
            });
            silo.AddGpt2Orleans(new ModelHostOptions { Models = models, KvCacheBytes = 16L << 20, SpillDirectory = Path.Combine(StorageRoot, "spill", options.SiloName) });
            silo.AddGpt2OrleansFileStorage(StorageRoot);
            silo.AddOutgoingGrainCallFilter(GrainCallCounter.Filter);
        });
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.DisposeAsync();
        try { Directory.Delete(Path.GetDirectoryName(BetaFolder)!, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
