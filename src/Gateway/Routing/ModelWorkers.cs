using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;
using Gpt2Orleans.Grains.Routing;

namespace Gpt2Orleans.Gateway.Routing;

/// <summary>
/// Finds a model worker for a request: a model the catalog does not list, or that is another tenant's, is a 404
/// (an unknown model and a forbidden one look the same), the tenant must be allowed to use it, and
/// <see cref="ModelRouter"/> picks the silo (loading the model there when it is cold).
/// </summary>
public sealed class ModelWorkers(IClusterClient cluster, ModelRouter router)
{
    /// <param name="checkTenant">false where the caller's <see cref="ITenantGrain.BeginStream"/> checks the model anyway (saving a grain call).</param>
    public async Task<(IModelGrain Worker, ModelInfo Model)> PickAsync(string model, string tenant, bool checkTenant = true)
    {
        var info = await FindAsync(model, tenant) ?? throw ApiException.ModelNotFound(model);
        if (checkTenant) await cluster.GetGrain<ITenantGrain>(tenant).CheckModel(model);
        return (await router.RouteAsync(info), info);
    }

    /// <summary>The catalog's entry for <paramref name="model"/> when <paramref name="tenant"/> may see it, else null.</summary>
    public async Task<ModelInfo?> FindAsync(string model, string tenant) =>
        GrainKeys.IsValidId(model) && await router.FindAsync(model) is { } info && info.Definition.VisibleTo(tenant) ? info : null;
}
