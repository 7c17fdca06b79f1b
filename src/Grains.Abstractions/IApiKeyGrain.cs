namespace Gpt2Orleans.Grains;

/// <summary>
/// The index from an API key to its tenant, keyed by the key's SHA-256 (hex), so the clear key is never stored and
/// a lookup is one grain call.
/// </summary>
public interface IApiKeyGrain : IGrainWithStringKey
{
    /// <summary>The tenant and key id this key belongs to, or null when the key is unknown or revoked.</summary>
    Task<ApiKeyOwner?> GetOwner();
    Task Assign(ApiKeyOwner owner);
    Task Revoke();
}

[GenerateSerializer, Immutable]
public sealed record ApiKeyOwner([property: Id(0)] string Tenant, [property: Id(1)] string KeyId);
