using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.Auth;

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c> → tenant, through the key's SHA-256 (<see cref="IApiKeyGrain"/>). A missing,
/// malformed, unknown or revoked key is a 401 that does not say which.
/// </summary>
public sealed class TenantAuthentication(IClusterClient cluster)
{
    private const string TenantItem = "gpt2o.tenant";

    public async Task<string> AuthenticateAsync(HttpContext context)
    {
        if (context.Items.TryGetValue(TenantItem, out var cached) && cached is string tenant) return tenant;
        string? key = BearerToken(context) ?? throw ApiException.Unauthorized("missing API key: send Authorization: Bearer <key>");
        if (key.Length is < 8 or > 512) throw ApiException.Unauthorized("invalid API key");
        var owner = await cluster.GetGrain<IApiKeyGrain>(ApiKeys.Hash(key)).GetOwner() ?? throw ApiException.Unauthorized("invalid API key");
        context.Items[TenantItem] = owner.Tenant;
        return owner.Tenant;
    }

    public static string? BearerToken(HttpContext context)
    {
        string? header = context.Request.Headers.Authorization;
        return header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
    }
}
