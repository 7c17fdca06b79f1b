using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.Auth;

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c> → tenant, through the key's SHA-256 (<see cref="IApiKeyGrain"/>). A missing,
/// malformed, unknown or revoked key is a 401 that does not say which. A known key is remembered for
/// <see cref="CacheFor"/> so most requests make no grain call for it: a key revoked through another gateway stops
/// working here within that time, one revoked through this gateway at once (<see cref="Forget"/>).
/// </summary>
public sealed class TenantAuthentication(IClusterClient cluster, TimeProvider clock)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);
    private const string TenantItem = "gpt2o.tenant";
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string Tenant, DateTimeOffset Until)> _known = new();

    public async Task<string> AuthenticateAsync(HttpContext context)
    {
        if (context.Items.TryGetValue(TenantItem, out var cached) && cached is string tenant) return tenant;
        string? key = BearerToken(context) ?? throw ApiException.Unauthorized("missing API key: send Authorization: Bearer <key>");
        if (key.Length is < 8 or > 512) throw ApiException.Unauthorized("invalid API key");
        string hash = ApiKeys.Hash(key);
        var now = clock.GetUtcNow();
        if (_known.TryGetValue(hash, out var known) && known.Until > now) return (string)(context.Items[TenantItem] = known.Tenant);
        var owner = await cluster.GetGrain<IApiKeyGrain>(hash).GetOwner();
        if (owner is null)
        {
            _known.TryRemove(hash, out _);
            throw ApiException.Unauthorized("invalid API key");
        }
        if (_known.Count > 100_000) _known.Clear(); // bounded: many distinct keys only cost lookups
        _known[hash] = (owner.Tenant, now + CacheFor);
        context.Items[TenantItem] = owner.Tenant;
        return owner.Tenant;
    }

    /// <summary>Forgets every remembered key (after a key is revoked or a tenant deleted through this gateway).</summary>
    public void Forget() => _known.Clear();

    public static string? BearerToken(HttpContext context)
    {
        string? header = context.Request.Headers.Authorization;
        return header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
    }
}
