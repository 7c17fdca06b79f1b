using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.Routing;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// <c>GET /v1/models</c> and <c>/v1/models/{id}</c>: OpenAI's model objects, plus each one's state (loaded, loading,
/// available, failed, with the reason), which silos hold it ready, its heads and its chat template; only the models
/// the tenant may use (another tenant's private model, or one outside its allowed list, is a 404, as a model that
/// does not exist), and never where the silo reads it from (a server's file path is nobody else's business).
/// </summary>
public static class ModelsEndpoint
{
    public static async Task<IResult> List(HttpContext context, TenantAuthentication auth, IClusterClient cluster)
    {
        string tenant = await auth.AuthenticateAsync(context);
        var allowed = await cluster.GetGrain<ITenantGrain>(tenant).GetAllowedModels();
        var models = await cluster.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).ListModels();
        return Results.Json(new
        {
            @object = "list",
            data = models.Where(m => m.Definition.VisibleTo(tenant) && (allowed is null || allowed.Contains(m.Definition.Name))).Select(ToObject),
        });
    }

    public static async Task<IResult> Get(HttpContext context, string id, TenantAuthentication auth, ModelWorkers workers, IClusterClient cluster)
    {
        string tenant = await auth.AuthenticateAsync(context);
        var model = await workers.FindAsync(id, tenant) ?? throw ApiException.ModelNotFound(id);
        if (await cluster.GetGrain<ITenantGrain>(tenant).GetAllowedModels() is { } allowed && !allowed.Contains(id)) throw ApiException.ModelNotFound(id);
        return Results.Json(ToObject(model));
    }

    /// <summary><c>{"method": "int4", "bits": 4, "group_size": 32}</c>; null for dense weights.</summary>
    private static object? Quantization(WeightQuantization? q) => q is null ? null : new { method = q.Method, bits = q.Bits, group_size = q.GroupSize };

    private static object ToObject(ModelInfo m) => new
    {
        id = m.Definition.Name, @object = "model", created = 0, owned_by = m.Definition.Tenant ?? "gpt2orleans", state = m.State, error = m.Error,
        heads = m.Definition.Heads, device = m.Definition.Device, dtype = m.Definition.DType, quantization = Quantization(m.Definition.Quantization), silos = m.Silos,
        chat_template = new
        {
            system = m.Definition.Chat.System, user = m.Definition.Chat.User, assistant_prefix = m.Definition.Chat.AssistantPrefix,
            turn_end = m.Definition.Chat.TurnEnd, stop = m.Definition.Chat.StopStrings,
        },
    };
}
