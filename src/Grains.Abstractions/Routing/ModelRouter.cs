namespace Gpt2Orleans.Grains.Routing;

/// <summary>
/// Finds the model worker a request goes to, for the gateway and for sessions alike: the catalog's list says
/// which silos hold a model's current version ready (reused for <see cref="ListFor"/>, or for as long as a silo's
/// reporter keeps it fresh, so a request does not wait on the catalog grain); among those the preferred silo
/// (a session's own) or the least loaded; and when none holds it, the catalog chooses the silo that loads it.
/// </summary>
public sealed class ModelRouter(IGrainFactory grains, TimeProvider clock)
{
    public static readonly TimeSpan ListFor = TimeSpan.FromSeconds(1);
    private CachedList? _list; // a reference, so concurrent requests never see half of an update

    private sealed record CachedList(IReadOnlyList<ModelInfo> Models, DateTimeOffset Until);

    /// <summary>The last list seen (possibly stale, possibly null before the first): for placement, which must not wait.</summary>
    public IReadOnlyList<ModelInfo>? Latest => _list?.Models;

    /// <summary>A fresh list from the catalog's answer to a silo's report, good for <paramref name="validFor"/>.</summary>
    public void Update(IReadOnlyList<ModelInfo> models, TimeSpan validFor) => _list = new CachedList(models, clock.GetUtcNow() + validFor);

    /// <summary>
    /// The catalog's entry for <paramref name="model"/>, or null when it lists no such model. A name the list lacks
    /// (a model registered a moment ago) is asked of the catalog again, at most once per <see cref="MissRefresh"/>, so
    /// a flood of unknown names cannot make every request wait on the catalog.
    /// </summary>
    public async Task<ModelInfo?> FindAsync(string model)
    {
        var cached = _list;
        var now = clock.GetUtcNow();
        if (cached is null || cached.Until <= now)
            _list = cached = new CachedList(await Catalog.ListModels(), now + ListFor);
        var found = cached.Models.FirstOrDefault(m => m.Definition.Name == model);
        if (found is null && now - _lastMiss > MissRefresh)
        {
            _lastMiss = now;
            _list = cached = new CachedList(await Catalog.ListModels(), now + ListFor);
            found = cached.Models.FirstOrDefault(m => m.Definition.Name == model);
        }
        return found;
    }

    public static readonly TimeSpan MissRefresh = TimeSpan.FromMilliseconds(50);
    private DateTimeOffset _lastMiss;

    /// <summary>A worker for <paramref name="info"/>'s current version: on <paramref name="preferSilo"/> when it holds it, else the least loaded silo that does, else where the catalog loads it.</summary>
    public async Task<IModelGrain> RouteAsync(ModelInfo info, string? preferSilo = null)
    {
        var definition = info.Definition;
        string silo;
        if (info.Silos.Count > 0)
            silo = preferSilo is not null && info.Silos.Contains(preferSilo) ? preferSilo : info.LeastLoadedSilo();
        else
        {
            var route = await Catalog.Acquire(definition.Name);
            (definition, silo) = (route.Definition, route.Silo);
        }
        return grains.GetGrain<IModelGrain>(GrainKeys.ModelWorker(definition.Name, silo, definition.Version));
    }

    /// <summary>Forgets the list, so the next request asks the catalog (after a worker said its model is not there).</summary>
    public void Invalidate() => _list = null;

    private ICatalogGrain Catalog => grains.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey);
}
