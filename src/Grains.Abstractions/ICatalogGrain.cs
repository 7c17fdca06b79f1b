namespace Gpt2Orleans.Grains;

/// <summary>
/// The source of truth for models (a singleton, key <see cref="GrainKeys.CatalogKey"/>): registered definitions
/// (persisted, versioned) and those silos were started with (from their metadata). It also holds the live picture
/// of which replicas are loaded where, as the silos report it every second (in memory: it is rebuilt within a
/// report interval after the catalog moves), and decides where a cold model loads.
/// </summary>
public interface ICatalogGrain : IGrainWithStringKey
{
    /// <summary>Registers a new model (a 409-class <see cref="ConflictException"/> when the name is taken); returns it as stored (version 1, its memory estimated).</summary>
    Task<ModelDefinition> AddModel(ModelDefinition model);

    /// <summary>Replaces a registered model's definition; a new source, dtype or quantization is a new version (hot swap). Returns it as stored.</summary>
    Task<ModelDefinition> UpdateModel(ModelDefinition model);

    /// <summary>Forgets a registered model; its replicas unload once their running requests end.</summary>
    Task RemoveModel(string name);

    /// <summary>Unloads every replica of a registered model (once idle); it stays registered and loads again on its next request.</summary>
    Task UnloadModel(string name);

    Task<IReadOnlyList<ModelInfo>> ListModels();

    /// <summary>The model, or <see cref="ModelUnavailableException"/> when it is unknown.</summary>
    Task<ModelInfo> GetModel(string name);

    /// <summary>
    /// Where a request for <paramref name="name"/> goes now: its current version on a silo that holds it, or, when no
    /// silo does, a silo chosen to load it (device, pins, free memory, load), remembered so that concurrent requests
    /// share one load. <see cref="ModelUnavailableException"/> (with Retry-After) when no silo can take it or its
    /// last load failed.
    /// </summary>
    Task<ModelRoute> Acquire(string name);

    /// <summary>
    /// A silo's report; the answer is what it should load or unload, and the catalog's current list. Interleaved, so
    /// that an <see cref="Acquire"/> waiting for the first reports of a just-activated catalog receives them.
    /// </summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<SiloDirectives> Report(SiloReport report);
}
