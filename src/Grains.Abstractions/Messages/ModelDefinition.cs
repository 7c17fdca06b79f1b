namespace Gpt2Orleans.Grains;

/// <summary>
/// A model the cluster knows: its name, where its checkpoint comes from (a local folder, <c>blob:container/path</c>,
/// or a hub repo id), which heads it has, the device it needs ("cpu" or "cuda"), how chats are rendered for it
/// (null: <see cref="ChatTemplate.Default"/>), its compute dtype, and its weights' quantization (null: dense).
/// A registered model also has a <see cref="Version"/> (a new source is a new version), how many replicas it may
/// have, the silos it may load on (null: any), the memory a replica needs (null: estimated from the checkpoint),
/// and the tenant it belongs to (null: every tenant may use it). A model a silo was started with is version 0 and
/// pinned to that silo.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ModelDefinition(
    [property: Id(0)] string Name,
    [property: Id(1)] string Source,
    [property: Id(2)] IReadOnlyList<string> Heads,
    [property: Id(3)] string Device,
    [property: Id(4)] ChatTemplate? ChatTemplate = null,
    [property: Id(5)] string DType = "float32",
    [property: Id(6)] WeightQuantization? Quantization = null)
{
    public ChatTemplate Chat => ChatTemplate ?? Grains.ChatTemplate.Default;

    [Id(7)] public int Version { get; init; }
    [Id(8)] public int MinReplicas { get; init; }
    [Id(9)] public int MaxReplicas { get; init; } = 1;
    /// <summary>Silo addresses (or host:port) it may load on; null: any silo with the device and room.</summary>
    [Id(10)] public IReadOnlyList<string>? PinnedSilos { get; init; }
    /// <summary>Bytes a replica needs for its weights (its KV pool is the silo's); null: estimated from the checkpoint's files.</summary>
    [Id(11)] public long? MemoryBytes { get; init; }
    /// <summary>The tenant this model is private to; null: public.</summary>
    [Id(12)] public string? Tenant { get; init; }
    /// <summary>Started with the silo (<c>--model</c>): loaded at start, never evicted, never moved.</summary>
    [Id(13)] public bool Static { get; init; }

    /// <summary>Whether <paramref name="tenant"/> may see and use this model (before its allowed-models list is asked).</summary>
    public bool VisibleTo(string tenant) => Tenant is null || Tenant == tenant;

    /// <summary>Whether a silo at <paramref name="silo"/> (its parsable address) may hold a replica.</summary>
    public bool MayLoadOn(string silo) => PinnedSilos is null || PinnedSilos.Any(p => silo == p || silo.StartsWith(p + "@", StringComparison.Ordinal));
}

/// <summary>
/// A model, the live silos that hold a ready replica of its current version, its state over the cluster
/// (<see cref="ModelStates"/>), why it failed when it did, every replica (any version), and the cluster's counters.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ModelInfo(
    [property: Id(0)] ModelDefinition Definition,
    [property: Id(1)] IReadOnlyList<string> Silos)
{
    [Id(2)] public string State { get; init; } = ModelStates.Available;
    [Id(3)] public string? Error { get; init; }
    [Id(4)] public IReadOnlyList<ReplicaStatus> Replicas { get; init; } = [];
    [Id(5)] public ModelCounters Counters { get; init; } = new();

    /// <summary>Of the silos holding it ready, the one whose replicas carry the least load.</summary>
    public string LeastLoadedSilo() => Routing.LeastLoaded.Of(Silos, silo => Replicas.Where(r => r.Silo == silo).Sum(r => r.Load));
}

public static class ModelStates
{
    public const string Loaded = "loaded", Loading = "loading", Available = "available", Failed = "failed";
}

/// <summary>How often a model was loaded, loaded again after an eviction, evicted, and failed to load, over the cluster.</summary>
[GenerateSerializer, Immutable]
public sealed record ModelCounters(
    [property: Id(0)] long Loads = 0,
    [property: Id(1)] long Reloads = 0,
    [property: Id(2)] long Evictions = 0,
    [property: Id(3)] long Failures = 0)
{
    public ModelCounters Plus(ModelCounters o) => new(Loads + o.Loads, Reloads + o.Reloads, Evictions + o.Evictions, Failures + o.Failures);
}
