namespace Gpt2Orleans.Grains;

/// <summary>A tenant's limits; null means unlimited.</summary>
[GenerateSerializer, Immutable]
public sealed record TenantQuota
{
    [Id(0)] public int? MaxSessions { get; init; }
    [Id(1)] public int? MaxConcurrentStreams { get; init; }
    [Id(2)] public int? TokensPerMinute { get; init; }
}

/// <summary>Tokens a tenant used on one model.</summary>
[GenerateSerializer, Immutable]
public sealed record ModelUsage([property: Id(0)] string Model, [property: Id(1)] long PromptTokens, [property: Id(2)] long CompletionTokens);

/// <summary>An API key as listed: its id and when it was issued (the key itself is only shown once, at issue).</summary>
[GenerateSerializer, Immutable]
public sealed record ApiKeyInfo([property: Id(0)] string KeyId, [property: Id(1)] DateTimeOffset IssuedAt);

/// <summary>A new key: the clear text (shown once) and its id.</summary>
[GenerateSerializer, Immutable]
public sealed record IssuedApiKey([property: Id(0)] string KeyId, [property: Id(1)] string Key);
