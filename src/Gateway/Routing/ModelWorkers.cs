using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.Routing;

/// <summary>
/// Finds a model worker for a request: the catalog says which live silos serve the model (an unknown model is a
/// 400, a known one that no silo serves a 503), the tenant must be allowed to use it, and one serving silo is
/// chosen at random (each silo's engine batches whatever reaches it). The catalog's list is reused for
/// <see cref="CatalogFor"/>, so a request does not wait on the catalog grain; a silo that joined or left shows within that time.
/// </summary>
public sealed class ModelWorkers(IClusterClient cluster, TimeProvider clock)
{
    public static readonly TimeSpan CatalogFor = TimeSpan.FromSeconds(1);
    private CachedCatalog? _catalog; // a reference, so concurrent requests never see half of an update

    private sealed record CachedCatalog(IReadOnlyList<ModelInfo> Models, DateTimeOffset Until);

    /// <param name="checkTenant">false where the caller's <see cref="ITenantGrain.BeginStream"/> checks the model anyway (saving a grain call).</param>
    public async Task<(IModelGrain Worker, ModelInfo Model)> PickAsync(string model, string tenant, bool checkTenant = true)
    {
        if (!GrainKeys.IsValidId(model)) throw ApiException.ModelNotFound(model);
        var info = await FindAsync(model) ?? throw ApiException.ModelNotFound(model);
        if (checkTenant) await cluster.GetGrain<ITenantGrain>(tenant).CheckModel(model);
        if (info.Silos.Count == 0) throw new ModelUnavailableException(model, "no live silo serves it");
        string silo = info.Silos[Random.Shared.Next(info.Silos.Count)];
        return (cluster.GetGrain<IModelGrain>(GrainKeys.ModelWorker(model, silo)), info);
    }

    /// <summary>The catalog's entry for <paramref name="model"/>, or null when it lists no such model (the catalog's own
    /// GetModel cannot tell an unknown model from one no silo serves, which the API answers differently).</summary>
    public async Task<ModelInfo?> FindAsync(string model)
    {
        var now = clock.GetUtcNow();
        var cached = _catalog;
        if (cached is null || cached.Until <= now)
            _catalog = cached = new CachedCatalog(await cluster.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).ListModels(), now + CatalogFor);
        return cached.Models.FirstOrDefault(m => m.Definition.Name == model);
    }
}
