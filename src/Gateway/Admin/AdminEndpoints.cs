using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.OpenAi;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.Admin;

/// <summary>
/// Tenant administration under <c>/admin</c>, for the operator's admin key only: create and delete tenants (with
/// quotas and allowed models), issue and revoke their keys (a new key is shown once), set quotas, read usage; and
/// the models' (<see cref="ModelAdminEndpoints"/>).
/// </summary>
public static class AdminEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        var admin = routes.MapGroup("/admin").AddEndpointFilter(async (context, next) =>
        {
            context.HttpContext.RequestServices.GetRequiredService<AdminAuthentication>().Authorize(context.HttpContext);
            return await next(context);
        });
        admin.MapPost("/tenants", CreateTenant);
        admin.MapGet("/tenants/{id}", GetTenant);
        admin.MapDelete("/tenants/{id}", DeleteTenant);
        admin.MapPost("/tenants/{id}/keys", IssueKey);
        admin.MapDelete("/tenants/{id}/keys/{keyId}", RevokeKey);
        admin.MapPut("/tenants/{id}/quota", SetQuota);
        admin.MapGet("/tenants/{id}/usage", GetUsage);
        ModelAdminEndpoints.Map(admin);
    }

    /// <summary><c>{"id", "quota": {...}, "allowed_models": [...]}</c>; creating an existing tenant changes nothing.</summary>
    public static async Task<IResult> CreateTenant(HttpContext context, IClusterClient cluster)
    {
        var fields = RequestFields.Parse(await RequestFields.ReadBodyAsync(context));
        string id = GrainKeys.ValidId(fields.RequiredString("id"), "id");
        var quota = fields.Get("quota") is { } q ? ParseQuota(q) : null;
        var allowed = fields.Strings("allowed_models", 256);
        var tenant = cluster.GetGrain<ITenantGrain>(id);
        if (await tenant.Exists()) throw new ApiException(409, $"tenant '{id}' already exists", "invalid_request_error", "id", "conflict");
        await tenant.Create(quota, allowed);
        return Results.Json(await Describe(id, tenant), statusCode: StatusCodes.Status201Created);
    }

    public static async Task<IResult> GetTenant(string id, IClusterClient cluster) => Results.Json(await Describe(id, await Existing(cluster, id)));

    public static async Task<IResult> DeleteTenant(string id, IClusterClient cluster, Auth.TenantAuthentication auth)
    {
        await (await Existing(cluster, id)).Delete();
        auth.Forget();
        return Results.Json(new { id, @object = "tenant.deleted", deleted = true });
    }

    public static async Task<IResult> IssueKey(string id, IClusterClient cluster)
    {
        var issued = await (await Existing(cluster, id)).IssueKey();
        return Results.Json(new { id = issued.KeyId, @object = "api_key", tenant = id, key = issued.Key }, statusCode: StatusCodes.Status201Created);
    }

    public static async Task<IResult> RevokeKey(string id, string keyId, IClusterClient cluster, Auth.TenantAuthentication auth)
    {
        var tenant = await Existing(cluster, id);
        if (!(await tenant.ListKeys()).Any(k => k.KeyId == keyId)) throw ApiException.NotFound($"tenant '{id}' has no key '{keyId}'", "key_id");
        await tenant.RevokeKey(keyId);
        auth.Forget();
        return Results.Json(new { id = keyId, @object = "api_key.deleted", deleted = true });
    }

    /// <summary><c>{"max_sessions", "max_concurrent_streams", "tokens_per_minute"}</c>; a field left out or null is unlimited.</summary>
    public static async Task<IResult> SetQuota(HttpContext context, string id, IClusterClient cluster)
    {
        var tenant = await Existing(cluster, id);
        var body = await RequestFields.ReadBodyAsync(context);
        await tenant.SetQuota(ParseQuota(body));
        return Results.Json(await Describe(id, tenant));
    }

    public static async Task<IResult> GetUsage(string id, IClusterClient cluster)
    {
        var usage = await (await Existing(cluster, id)).GetUsage();
        return Results.Json(new { @object = "list", tenant = id, data = usage.Select(UsageObject) });
    }

    private static TenantQuota ParseQuota(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("'quota' must be an object", "quota");
        var fields = new RequestFields(body);
        return new TenantQuota
        {
            MaxSessions = fields.Integer("max_sessions", 0, int.MaxValue),
            MaxConcurrentStreams = fields.Integer("max_concurrent_streams", 0, int.MaxValue),
            TokensPerMinute = fields.Integer("tokens_per_minute", 0, int.MaxValue),
        };
    }

    private static async Task<ITenantGrain> Existing(IClusterClient cluster, string id)
    {
        var tenant = GrainKeys.IsValidId(id) ? cluster.GetGrain<ITenantGrain>(id) : null;
        return tenant is not null && await tenant.Exists() ? tenant : throw ApiException.NotFound($"tenant '{id}' does not exist", "id");
    }

    private static async Task<object> Describe(string id, ITenantGrain tenant)
    {
        var quota = await tenant.GetQuota();
        return new
        {
            id, @object = "tenant",
            quota = new { max_sessions = quota.MaxSessions, max_concurrent_streams = quota.MaxConcurrentStreams, tokens_per_minute = quota.TokensPerMinute },
            keys = (await tenant.ListKeys()).Select(k => new { id = k.KeyId, issued_at = k.IssuedAt.ToUnixTimeSeconds() }),
            sessions = (await tenant.ListSessions()).Count,
            usage = (await tenant.GetUsage()).Select(UsageObject),
        };
    }

    private static object UsageObject(ModelUsage u) => new
    {
        model = u.Model, prompt_tokens = u.PromptTokens, completion_tokens = u.CompletionTokens, total_tokens = u.PromptTokens + u.CompletionTokens,
    };
}
