namespace Gpt2Orleans.Grains.Tenants;

[GenerateSerializer]
public sealed class TenantState
{
    [Id(0)] public bool Exists { get; set; }
    [Id(1)] public TenantQuota Quota { get; set; } = new();
    /// <summary>Null: every model.</summary>
    [Id(2)] public List<string>? AllowedModels { get; set; }
    /// <summary>Key id → (SHA-256 of the key, issued at).</summary>
    [Id(3)] public Dictionary<string, StoredApiKey> Keys { get; set; } = [];
    [Id(4)] public Dictionary<string, string> Sessions { get; set; } = [];
    [Id(5)] public Dictionary<string, ModelUsage> Usage { get; set; } = [];
}

[GenerateSerializer]
public sealed record StoredApiKey([property: Id(0)] string Hash, [property: Id(1)] DateTimeOffset IssuedAt);
