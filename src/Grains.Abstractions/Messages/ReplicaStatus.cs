namespace Gpt2Orleans.Grains;

/// <summary>
/// One replica of a model version on one silo, as the silo reports it: its state (<see cref="ModelStates"/>
/// loading, loaded or failed), its load (running and waiting sequences, requests in flight, kept conversations),
/// the bytes it holds, when it was last used, and why its load failed.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ReplicaStatus(
    [property: Id(0)] string Model,
    [property: Id(1)] int Version,
    [property: Id(2)] string Silo,
    [property: Id(3)] string State,
    [property: Id(4)] int Running,
    [property: Id(5)] int Waiting,
    [property: Id(6)] long Bytes,
    [property: Id(7)] DateTimeOffset LastUsed,
    [property: Id(8)] string? Error = null,
    [property: Id(9)] bool Static = false,
    [property: Id(10)] IReadOnlyList<string>? Heads = null,
    [property: Id(11)] int Kept = 0,
    [property: Id(12)] DateTimeOffset? RetryAt = null,
    [property: Id(13)] int InFlight = 0)
{
    /// <summary>Sequences in its engine, or requests holding it (a stream whose reader is slower than the engine), whichever is more.</summary>
    public int Load => Math.Max(Running + Waiting, InFlight);
    public bool Idle => Load == 0;
}

/// <summary>
/// What a silo tells the catalog every second: its memory budget and what it holds, the KV pool each language model
/// gets, whether it has a GPU, its replicas, and its counters per model.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record SiloReport(
    [property: Id(0)] string Silo,
    [property: Id(1)] long BudgetBytes,
    [property: Id(2)] long KvBytesPerModel,
    [property: Id(3)] bool Gpu,
    [property: Id(4)] IReadOnlyList<ReplicaStatus> Replicas,
    [property: Id(5)] IReadOnlyDictionary<string, ModelCounters> Counters)
{
    public long UsedBytes => Replicas.Where(r => r.State != ModelStates.Failed).Sum(r => r.Bytes);
}

/// <summary>What the catalog asks of a reporting silo: replicas to load (definitions) and to unload once idle (model, version).</summary>
[GenerateSerializer, Immutable]
public sealed record SiloDirectives(
    [property: Id(0)] IReadOnlyList<ModelDefinition> Load,
    [property: Id(1)] IReadOnlyList<ModelVersion> Unload,
    [property: Id(2)] IReadOnlyList<ModelInfo> Models);

[GenerateSerializer, Immutable]
public sealed record ModelVersion([property: Id(0)] string Model, [property: Id(1)] int Version);

/// <summary>Where a request for a model goes: the version to use and the silo holding (or loading) it.</summary>
[GenerateSerializer, Immutable]
public sealed record ModelRoute([property: Id(0)] ModelDefinition Definition, [property: Id(1)] string Silo);
