namespace Gpt2Orleans.Grains;

/// <summary>
/// A tenant: its API keys (stored hashed), allowed models, quotas, usage and the list of its sessions. Keyed by
/// tenant id.
/// </summary>
public interface ITenantGrain : IGrainWithStringKey
{
    /// <summary>Creates the tenant (idempotent), optionally with a quota and the models it may use (null: all).</summary>
    Task Create(TenantQuota? quota = null, IReadOnlyList<string>? allowedModels = null);
    Task<bool> Exists();
    Task Delete();

    Task<IssuedApiKey> IssueKey();
    /// <summary>Registers a key chosen elsewhere (configuration), by its SHA-256; returns its id.</summary>
    Task<string> RegisterKeyHash(string keyHash);
    Task RevokeKey(string keyId);
    Task<IReadOnlyList<ApiKeyInfo>> ListKeys();

    Task SetQuota(TenantQuota quota);
    Task<TenantQuota> GetQuota();
    Task SetAllowedModels(IReadOnlyList<string>? models);
    /// <summary>Throws <see cref="InvalidRequestException"/> when the tenant may not use the model.</summary>
    Task CheckModel(string model);
    /// <summary>The models the tenant may use; null when it may use all.</summary>
    Task<IReadOnlyList<string>?> GetAllowedModels();

    /// <summary>Counts a new session against the quota; throws <see cref="RetryLaterException"/> when it is full.</summary>
    Task RegisterSession(string sessionId, string model);
    /// <summary>Drops a session from the tenant's list; says whether it was listed.</summary>
    Task<bool> UnregisterSession(string sessionId);
    /// <summary>The model of one of this tenant's sessions, or null when it has no such session.</summary>
    Task<string?> GetSessionModel(string sessionId);
    Task<IReadOnlyList<string>> ListSessions();

    /// <summary>
    /// Admits one stream of a model the tenant may use (else <see cref="InvalidRequestException"/>) under the
    /// concurrent-stream and tokens-per-minute quotas (else <see cref="RetryLaterException"/>).
    /// </summary>
    Task<Guid> BeginStream(string model);
    /// <summary>Ends a stream and meters its tokens.</summary>
    Task EndStream(Guid stream, string model, TokenUsage usage);
    Task<IReadOnlyList<ModelUsage>> GetUsage();
}
