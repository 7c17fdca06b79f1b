using Gpt2Orleans.Grains.Models;
using Gpt2Orleans.Grains.Placement;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Gpt2Orleans.Grains.Catalog;

/// <summary>
/// The models the cluster knows and where they are: registered definitions (persisted, versioned), the models live
/// silos were started with (from their metadata), and the replicas the silos report every second (in memory). It
/// decides where a cold model loads (<see cref="ReplicaPlanner"/>), remembers that choice until the silo reports the
/// replica so concurrent requests share one load, and in its answer to each report tells that silo what to load
/// (replicas below the minimum or under demand) and what to unload (superseded versions, deleted or unloaded
/// models, idle replicas above what demand needs).
/// </summary>
public sealed class CatalogGrain(
    [PersistentState("catalog", StorageNames.Catalog)] IPersistentState<CatalogState> state,
    IClusterMembershipService membership,
    ISiloMetadataCache metadata,
    ILogger<CatalogGrain> logger) : Grain, ICatalogGrain
{
    /// <summary>How long a silo chosen to load a model is remembered before it reports the replica.</summary>
    public static readonly TimeSpan AssignmentFor = TimeSpan.FromSeconds(60);
    /// <summary>How long a just-activated catalog waits for every live silo's first report before it places a model.</summary>
    private static readonly TimeSpan FirstReportsWait = TimeSpan.FromSeconds(3);
    private readonly DateTimeOffset _activated = DateTimeOffset.UtcNow;

    private readonly Dictionary<string, SiloReport> _reports = [];
    private readonly Dictionary<string, IReadOnlyDictionary<string, ModelCounters>> _counters = []; // by silo, kept after it leaves
    private readonly Dictionary<(string Model, string Silo), (int Version, DateTimeOffset At, long Bytes)> _assigned = [];
    /// <summary>Models unloaded (or deleted) by the operator: their replicas go, and none is added until the next request asks for it.</summary>
    private readonly HashSet<string> _unloading = [];

    public async Task<ModelDefinition> AddModel(ModelDefinition model)
    {
        Validate(model);
        if (state.State.Models.ContainsKey(model.Name) || StaticDefinitions().ContainsKey(model.Name))
            throw new ConflictException($"model '{model.Name}' already exists; update it instead", "name");
        var stored = WithEstimates(model) with { Version = 1, Static = false };
        await Store(model.Name, stored);
        _unloading.Remove(model.Name);
        logger.LogInformation("Registered model {Model} from {Source}", stored.Name, stored.Source);
        return stored;
    }

    public async Task<ModelDefinition> UpdateModel(ModelDefinition model)
    {
        Validate(model);
        var old = Registered(model.Name);
        bool newWeights = model.Source != old.Source || model.DType != old.DType || model.Quantization != old.Quantization || model.Device != old.Device;
        var stored = WithEstimates(model) with { Version = old.Version + (newWeights ? 1 : 0), Static = false };
        await Store(model.Name, stored);
        if (newWeights) logger.LogInformation("Model {Model} is now version {Version} from {Source}", stored.Name, stored.Version, stored.Source);
        return stored;
    }

    public async Task RemoveModel(string name)
    {
        Registered(name);
        await Store(name, null);
        _unloading.Add(name);
    }

    /// <summary>
    /// Sets (or, for null, removes) a definition and persists it; when the write fails the definition is put back as it
    /// was, so a failed write leaves no definition in memory that storage does not hold.
    /// </summary>
    private async Task Store(string name, ModelDefinition? definition)
    {
        var old = state.State.Models.GetValueOrDefault(name);
        Set(definition);
        try { await state.WriteStateAsync(); }
        catch
        {
            Set(old);
            throw;
        }

        void Set(ModelDefinition? d)
        {
            if (d is null) state.State.Models.Remove(name);
            else state.State.Models[name] = d;
        }
    }

    public Task UnloadModel(string name)
    {
        Registered(name);
        _unloading.Add(name);
        foreach (var key in _assigned.Keys.Where(k => k.Model == name).ToList()) _assigned.Remove(key);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<ModelInfo>> ListModels() => Task.FromResult(Build());

    public Task<ModelInfo> GetModel(string name) =>
        Task.FromResult(Build().FirstOrDefault(m => m.Definition.Name == name) ?? throw new ModelUnavailableException(name, "the catalog does not list it"));

    public async Task<ModelRoute> Acquire(string name)
    {
        // A catalog that just moved (its silo stopped) knows no replicas until each silo reports, within a second.
        while (ActiveSilos.Of(membership).Count() > LiveReports().Count && DateTimeOffset.UtcNow - _activated < FirstReportsWait)
            await Task.Delay(50);
        var live = LiveReports();
        var info = Build(live).FirstOrDefault(m => m.Definition.Name == name) ?? throw new ModelUnavailableException(name, "the catalog does not list it");
        var definition = info.Definition;
        if (definition.Static)
            return info.Silos.Count > 0 ? new ModelRoute(definition, info.LeastLoadedSilo())
                : throw new ModelUnavailableException(name, "no live silo serves it");
        _unloading.Remove(name); // asked for again
        var planner = Planner(live);
        if (planner.Holding(definition) is { } holding) return new ModelRoute(definition, holding);
        if (planner.Failure(definition) is { } failed)
            throw new ModelUnavailableException(name, $"it failed to load: {failed.Error}", Math.Max(1, Math.Ceiling(((failed.RetryAt ?? DateTimeOffset.UtcNow) - DateTimeOffset.UtcNow).TotalSeconds)));
        string silo = planner.Choose(definition);
        Assign(definition, silo);
        logger.LogInformation("Model {Model} v{Version} will load on {Silo}", name, definition.Version, silo);
        return new ModelRoute(definition, silo);
    }

    public Task<SiloDirectives> Report(SiloReport report)
    {
        _reports[report.Silo] = report;
        _counters[report.Silo] = report.Counters;
        var live = LiveReports();
        foreach (var gone in _reports.Keys.Except(live.Keys).ToList()) _reports.Remove(gone);
        var now = DateTimeOffset.UtcNow;
        foreach (var (key, (version, at, _)) in _assigned.ToList())
            if (!live.ContainsKey(key.Silo) || now - at > AssignmentFor
                || live[key.Silo].Replicas.Any(r => r.Model == key.Model && r.Version == version && r.State != ModelStates.Loading))
                _assigned.Remove(key);

        var planner = Planner(live);
        var unload = report.Replicas.Where(r => !r.Static && (_unloading.Contains(r.Model)
                || !state.State.Models.TryGetValue(r.Model, out var d) || d.Version != r.Version || planner.Surplus(d, r)))
            .Select(r => new ModelVersion(r.Model, r.Version)).Distinct().ToList();
        var load = new List<ModelDefinition>();
        foreach (var definition in state.State.Models.Values.Where(d => !_unloading.Contains(d.Name)))
            if (planner.WantsAnother(definition) && planner.TryChoose(definition) == report.Silo)
            {
                Assign(definition, report.Silo);
                load.Add(definition);
                logger.LogInformation("Model {Model} v{Version} gets a replica on {Silo}", definition.Name, definition.Version, report.Silo);
            }
        return Task.FromResult(new SiloDirectives(load, unload, Build(live)));
    }

    /// <summary>Remembers that <paramref name="silo"/> loads the definition's version, until it reports the replica.</summary>
    private void Assign(ModelDefinition definition, string silo) =>
        _assigned[(definition.Name, silo)] = (definition.Version, DateTimeOffset.UtcNow, definition.MemoryBytes ?? ModelMemory.UnknownWeightBytes);

    private ReplicaPlanner Planner(IReadOnlyDictionary<string, SiloReport> live) =>
        new(live, _assigned.Select(a => (a.Key.Model, a.Key.Silo, a.Value.Version, a.Value.Bytes)).ToList());

    private ModelDefinition Registered(string name) =>
        state.State.Models.GetValueOrDefault(name) ?? throw new ModelUnavailableException(name, "the catalog does not list it");

    private static void Validate(ModelDefinition model)
    {
        GrainKeys.ValidId(model.Name, "model");
        if (string.IsNullOrWhiteSpace(model.Source)) throw new InvalidRequestException($"model '{model.Name}' needs a source", "source");
        model.ChatTemplate?.Validate(model.Name);
        if (model.Device is not ("cpu" or "cuda")) throw new InvalidRequestException($"device '{model.Device}' is not 'cpu' or 'cuda'", "device");
        if (model.DType is not ("float32" or "bfloat16" or "float16")) throw new InvalidRequestException($"dtype '{model.DType}' is not float32, bfloat16 or float16", "dtype");
        if (model.Quantization is { } quantization) ModelQuantization.Validate(quantization);
        if (model.MinReplicas < 0) throw new InvalidRequestException("min_replicas must not be negative", "min_replicas");
        if (model.MaxReplicas < Math.Max(1, model.MinReplicas) || model.MaxReplicas > 64)
            throw new InvalidRequestException("max_replicas must be between max(1, min_replicas) and 64", "max_replicas");
        if (model.MemoryBytes is <= 0) throw new InvalidRequestException("memory_mb must be positive", "memory_mb");
        if (model.Tenant is { } tenant) GrainKeys.ValidId(tenant, "tenant");
        if (model.PinnedSilos is { } pins && (pins.Count == 0 || pins.Any(string.IsNullOrWhiteSpace)))
            throw new InvalidRequestException("silos must list at least one silo address", "silos");
    }

    /// <summary>Heads read from a local checkpoint's config.json when not given; the weights' memory from its files.</summary>
    /// <remarks>Lists are stored as plain lists: the JSON grain storage records each value's type, and a collection
    /// expression's compiler-made type would not read back.</remarks>
    private static ModelDefinition WithEstimates(ModelDefinition model) => model with
    {
        Heads = model.Heads.Count > 0 ? model.Heads.ToList() : new List<string> { ModelHeads.Of(SiloModels.LocalConfig(model.Source)?.Architectures ?? []) },
        PinnedSilos = model.PinnedSilos?.ToList(),
        MemoryBytes = model.MemoryBytes ?? ModelMemory.EstimateWeightBytes(model.Source, model.DType, model.Quantization),
    };

    private IReadOnlyDictionary<string, SiloReport> LiveReports()
    {
        var active = ActiveSilos.Of(membership).Select(a => a.ToParsableString()).ToHashSet();
        return _reports.Where(r => active.Contains(r.Key)).ToDictionary(r => r.Key, r => r.Value);
    }

    /// <summary>The models silos were started with, from the metadata of the live ones (name → definition, silos serving it).</summary>
    private Dictionary<string, (ModelDefinition Definition, List<string> Silos)> StaticDefinitions()
    {
        var models = new Dictionary<string, (ModelDefinition, List<string>)>();
        foreach (var address in ActiveSilos.Of(membership))
        {
            var silo = metadata.GetSiloMetadata(address);
            foreach (var name in SiloModels.Served(silo))
            {
                if (!models.TryGetValue(name, out var entry))
                    models[name] = entry = (new ModelDefinition(name, SiloModels.Source(silo, name) ?? "", [SiloModels.Head(silo, name)], SiloModels.HasGpu(silo) ? "cuda" : "cpu",
                        SiloModels.ChatTemplateOf(silo, name), SiloModels.DTypeOf(silo), SiloModels.QuantizationOf(silo, name)) { Static = true }, []);
                entry.Item2.Add(address.ToParsableString());
            }
        }
        return models;
    }

    private IReadOnlyList<ModelInfo> Build() => Build(LiveReports());

    private IReadOnlyList<ModelInfo> Build(IReadOnlyDictionary<string, SiloReport> live)
    {
        var replicas = live.Values.SelectMany(s => s.Replicas).ToLookup(r => r.Model);
        var counters = _counters.Values.SelectMany(c => c).ToLookup(c => c.Key, c => c.Value);
        var infos = new List<ModelInfo>();
        foreach (var (name, (definition, silos)) in StaticDefinitions())
            if (!state.State.Models.ContainsKey(name))
                infos.Add(Describe(definition, silos.Order().ToList(), replicas[name].ToList(), counters[name]));
        foreach (var definition in state.State.Models.Values)
        {
            var own = replicas[definition.Name].Where(r => !r.Static).ToList();
            var ready = own.Where(r => r.Version == definition.Version && r.State == ModelStates.Loaded).Select(r => r.Silo).Order().ToList();
            infos.Add(Describe(definition, ready, own, counters[definition.Name]));
        }
        return infos.OrderBy(i => i.Definition.Name, StringComparer.Ordinal).ToList();
    }

    private ModelInfo Describe(ModelDefinition definition, IReadOnlyList<string> silos, IReadOnlyList<ReplicaStatus> replicas, IEnumerable<ModelCounters> counters)
    {
        var current = replicas.Where(r => r.Version == definition.Version).ToList();
        bool pending = _assigned.Any(a => a.Key.Model == definition.Name && a.Value.Version == definition.Version);
        var failed = current.FirstOrDefault(r => r.State == ModelStates.Failed);
        string modelState = current.Any(r => r.State == ModelStates.Loaded) ? ModelStates.Loaded
            : current.Any(r => r.State == ModelStates.Loading) || pending ? ModelStates.Loading
            : failed is not null ? ModelStates.Failed
            : ModelStates.Available;
        var heads = current.FirstOrDefault(r => r.Heads is { Count: > 0 })?.Heads;
        return new ModelInfo(heads is null ? definition : definition with { Heads = heads }, silos)
        {
            State = modelState,
            Error = modelState == ModelStates.Failed ? failed!.Error : null,
            Replicas = replicas,
            Counters = counters.Aggregate(new ModelCounters(), (sum, c) => sum.Plus(c)),
        };
    }
}

[GenerateSerializer]
public sealed class CatalogState
{
    [Id(0)] public Dictionary<string, ModelDefinition> Models { get; set; } = [];
}
