using Gpt2Orleans.Grains.Hosting;
using Gpt2Orleans.Grains.Models;
using Gpt2Orleans.Grains.Routing;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Tests.Shared;
using Orleans.TestingHost;

namespace Gpt2Orleans.Grains.Tests.Support;

/// <summary>
/// A cluster of its own for the model lifecycle: three silos with a small memory budget each (about two tiny models
/// with their KV pools), silo 0 started with "pinned" (alpha's weights, static), and <see cref="Registered"/> tiny
/// language models of distinct random weights, each in its folder, to register at run time (more than fit).
/// Disposing stops it and deletes the folders.
/// </summary>
public sealed class LifecycleCluster : IAsyncDisposable
{
    public const string Pinned = "pinned";
    public const long KvBytes = 1L << 20;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gpt2o-lifecycle-" + Guid.NewGuid().ToString("N"));
    private readonly TinyModelFolders _folders = new(ClusterFixture.AlphaFolder);
    public InProcessTestCluster Cluster { get; private set; } = null!;
    public IClusterClient Client => Cluster.Client;
    public ICatalogGrain Catalog => Client.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey);
    public ModelRouter Router { get; private set; } = null!;

    /// <summary>A tiny model's folder with weights drawn from <paramref name="seed"/> (made once per cluster).</summary>
    public string ModelFolder(int seed) => _folders.Model(seed);

    public string HostileFolder() => _folders.Hostile();

    /// <summary>Budget per silo: room for two tiny models (about 13 MB of weights and a 1 MB KV pool each), not three.</summary>
    public static long BudgetBytes { get; } = TwoModels();

    private static long TwoModels()
    {
        using var alpha = Gpt2LMHeadModel.FromPretrained(ClusterFixture.AlphaFolder);
        long onDisk = new FileInfo(Path.Combine(ClusterFixture.AlphaFolder, "model.safetensors")).Length;
        return 2 * (Math.Max(alpha.WeightBytes, onDisk) + KvBytes) + (2L << 20);
    }

    public static async Task<LifecycleCluster> StartAsync()
    {
        var result = new LifecycleCluster();
        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((options, silo) =>
        {
            bool primary = options.SiloName == "Primary" || options.SiloName.EndsWith("_0", StringComparison.Ordinal);
            silo.AddGpt2Orleans(new ModelHostOptions
            {
                Models = primary ? new() { [Pinned] = ClusterFixture.AlphaFolder } : [],
                KvCacheBytes = KvBytes,
                MemoryBudgetBytes = BudgetBytes,
                SpillDirectory = Path.Combine(result._root, "spill", options.SiloName),
            });
            silo.AddGpt2OrleansFileStorage(Path.Combine(result._root, "store"));
        });
        result.Cluster = builder.Build();
        await result.Cluster.DeployAsync();
        result.Router = new ModelRouter(result.Client, TimeProvider.System);
        return result;
    }

    /// <summary>Registers a tiny model of <paramref name="seed"/>'s weights as <paramref name="name"/>.</summary>
    public Task<ModelDefinition> Register(string name, int seed, int minReplicas = 0, int maxReplicas = 1) =>
        Catalog.AddModel(new ModelDefinition(name, ModelFolder(seed), [], "cpu") { MinReplicas = minReplicas, MaxReplicas = maxReplicas });

    /// <summary>Greedy tokens from <paramref name="model"/> through the router, as a gateway request would get them.</summary>
    public async Task<List<int>> Generate(string model, int tokens = 4, string prompt = "The cat")
    {
        var info = await Router.FindAsync(model) ?? throw new InvalidOperationException($"no model {model}");
        var worker = await Router.RouteAsync(info);
        var ids = Inference.Tokenization.Gpt2Tokenizer.Default.Encode(prompt);
        var generated = new List<int>();
        await foreach (var token in worker.Generate(new ModelRequest
        {
            Tenant = "t", PromptIds = [.. ids], Parameters = new GenerationParameters { MaxNewTokens = tokens, MinNewTokens = tokens, DoSample = false },
        }))
            generated.Add(token.TokenId);
        return generated;
    }

    /// <summary>Waits (bounded) until <paramref name="done"/> holds for the catalog's list.</summary>
    public async Task<IReadOnlyList<ModelInfo>> WaitFor(Func<IReadOnlyList<ModelInfo>, bool> done, string what, int seconds = 15)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var models = await Catalog.ListModels();
            if (done(models)) return models;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waited {seconds} s for {what}");
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        _folders.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
