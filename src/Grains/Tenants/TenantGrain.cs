using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Storage;

namespace Gpt2Orleans.Grains.Tenants;

/// <summary>
/// A tenant's keys, models, quotas, sessions and usage. Concurrent streams and the token window are in memory (they
/// reset with the activation, as rate limits do). The session list is an index of the sessions' own stored states,
/// which are the truth: a session is listed before its state is first written and unlisted after its state is
/// cleared, so a crash between the two leaves only listed sessions that do not exist. Each activation checks the
/// entries it inherited against the session store once, before it lists sessions or counts them against the quota.
/// </summary>
public sealed class TenantGrain(
    [PersistentState("tenant", StorageNames.Tenants)] IPersistentState<TenantState> state,
    [FromKeyedServices(StorageNames.Sessions)] IGrainStorage sessionStore) : Grain, ITenantGrain
{
    private bool _indexChecked;
    private readonly HashSet<Guid> _streams = [];
    private readonly TokenRateWindow _window = new();
    private string TenantId => this.GetPrimaryKeyString();

    public async Task Create(TenantQuota? quota = null, IReadOnlyList<string>? allowedModels = null)
    {
        GrainKeys.ValidId(TenantId, "tenant");
        if (state.State.Exists) return;
        state.State = new TenantState { Exists = true, Quota = quota ?? new(), AllowedModels = allowedModels?.ToList() };
        await state.WriteStateAsync();
    }

    public Task<bool> Exists() => Task.FromResult(state.State.Exists);

    /// <summary>
    /// Deletes the tenant's sessions (transcripts, kept and spilled KV) first, then its keys and itself: a tenant created
    /// again under the same id starts empty and may reuse its session ids. A failure midway leaves the tenant to delete again.
    /// </summary>
    public async Task Delete()
    {
        foreach (var (sessionId, model) in state.State.Sessions.ToList())
        {
            RequestContext.Set(GrainKeys.ModelContextKey, model); // the session's placement reads its model
            // The session unregisters itself here, in this call's chain; one listed but never stored just unregisters.
            using (RequestContext.AllowCallChainReentrancy())
                await GrainFactory.GetGrain<ISessionGrain>(GrainKeys.Session(TenantId, sessionId)).Delete();
        }
        foreach (var stored in state.State.Keys.Values) await GrainFactory.GetGrain<IApiKeyGrain>(stored.Hash).Revoke();
        await state.ClearStateAsync();
        state.State = new TenantState();
    }

    public async Task<IssuedApiKey> IssueKey()
    {
        RequireExists();
        string key = ApiKeys.NewKey(), id = ApiKeys.NewKeyId(), hash = ApiKeys.Hash(key);
        await GrainFactory.GetGrain<IApiKeyGrain>(hash).Assign(new ApiKeyOwner(TenantId, id));
        state.State.Keys[id] = new StoredApiKey(hash, DateTimeOffset.UtcNow);
        await state.WriteStateAsync();
        return new IssuedApiKey(id, key);
    }

    public async Task<string> RegisterKeyHash(string keyHash)
    {
        RequireExists();
        if (keyHash.Length != 64 || !keyHash.All(char.IsAsciiHexDigitLower)) throw new InvalidRequestException("a key hash is 64 lowercase hex digits", "key");
        var existing = state.State.Keys.FirstOrDefault(k => k.Value.Hash == keyHash).Key;
        if (existing is not null) return existing;
        string id = ApiKeys.NewKeyId();
        await GrainFactory.GetGrain<IApiKeyGrain>(keyHash).Assign(new ApiKeyOwner(TenantId, id));
        state.State.Keys[id] = new StoredApiKey(keyHash, DateTimeOffset.UtcNow);
        await state.WriteStateAsync();
        return id;
    }

    public async Task RevokeKey(string keyId)
    {
        RequireExists();
        if (!state.State.Keys.Remove(keyId, out var stored)) throw new InvalidRequestException($"key '{keyId}' does not exist", "key_id");
        await GrainFactory.GetGrain<IApiKeyGrain>(stored.Hash).Revoke();
        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<ApiKeyInfo>> ListKeys() =>
        Task.FromResult<IReadOnlyList<ApiKeyInfo>>(state.State.Keys.Select(k => new ApiKeyInfo(k.Key, k.Value.IssuedAt)).OrderBy(k => k.IssuedAt).ToList());

    public async Task SetQuota(TenantQuota quota)
    {
        RequireExists();
        if (quota.MaxSessions < 0 || quota.MaxConcurrentStreams < 0 || quota.TokensPerMinute < 0)
            throw new InvalidRequestException("quotas must not be negative", "quota");
        state.State.Quota = quota;
        await state.WriteStateAsync();
    }

    public Task<TenantQuota> GetQuota() => Task.FromResult(state.State.Quota);

    public async Task SetAllowedModels(IReadOnlyList<string>? models)
    {
        RequireExists();
        state.State.AllowedModels = models?.ToList();
        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>?> GetAllowedModels()
    {
        RequireExists();
        return Task.FromResult<IReadOnlyList<string>?>(state.State.AllowedModels?.ToList());
    }

    public Task CheckModel(string model)
    {
        RequireExists();
        if (state.State.AllowedModels is { } allowed && !allowed.Contains(model))
            throw new InvalidRequestException($"model '{model}' is not available to this tenant", "model");
        return Task.CompletedTask;
    }

    public async Task RegisterSession(string sessionId, string model)
    {
        RequireExists();
        await CheckIndex();
        if (state.State.Quota.MaxSessions is { } max && state.State.Sessions.Count >= max && !state.State.Sessions.ContainsKey(sessionId))
            throw new QuotaExceededException($"this tenant already has {max} sessions (its quota); delete one first", "max_sessions");
        state.State.Sessions[sessionId] = model;
        await state.WriteStateAsync();
    }

    public async Task<bool> UnregisterSession(string sessionId)
    {
        if (!state.State.Sessions.Remove(sessionId)) return false;
        await state.WriteStateAsync();
        return true;
    }

    public Task<string?> GetSessionModel(string sessionId) => Task.FromResult(state.State.Sessions.GetValueOrDefault(sessionId));

    public async Task<IReadOnlyList<string>> ListSessions()
    {
        await CheckIndex();
        return state.State.Sessions.Keys.Order().ToList();
    }

    /// <summary>
    /// Drops the listed sessions whose stored state does not exist (a create or delete cut short by a crash), read
    /// straight from the session store: asking the session grains could deadlock with a session calling here.
    /// Sessions listed by this activation are being created or exist, so only the inherited entries are checked.
    /// </summary>
    private async Task CheckIndex()
    {
        if (_indexChecked) return;
        var missing = new List<string>();
        foreach (var sessionId in state.State.Sessions.Keys.ToList())
        {
            var stored = new GrainState<SessionState>();
            var grain = GrainFactory.GetGrain<ISessionGrain>(GrainKeys.Session(TenantId, sessionId)).GetGrainId();
            await sessionStore.ReadStateAsync(StorageNames.SessionState, grain, stored);
            if (!stored.RecordExists || stored.State is not { Exists: true }) missing.Add(sessionId);
        }
        foreach (var sessionId in missing) state.State.Sessions.Remove(sessionId);
        if (missing.Count > 0 && state.State.Exists) await state.WriteStateAsync();
        _indexChecked = true;
    }

    public async Task<Guid> BeginStream(string model)
    {
        await CheckModel(model);
        var quota = state.State.Quota;
        if (quota.MaxConcurrentStreams is { } streams && _streams.Count >= streams)
            throw new RetryLaterException($"this tenant already has {streams} streams running (its quota)", 1);
        if (quota.TokensPerMinute is { } perMinute && _window.WaitFor(perMinute) is { } wait && wait > TimeSpan.Zero)
            throw new RetryLaterException($"this tenant used its {perMinute} tokens per minute", Math.Ceiling(wait.TotalSeconds));
        var id = Guid.NewGuid();
        _streams.Add(id);
        return id;
    }

    public async Task EndStream(Guid stream, string model, TokenUsage usage)
    {
        _streams.Remove(stream);
        _window.Add(usage.PromptTokens + usage.CompletionTokens);
        var before = state.State.Usage.GetValueOrDefault(model) ?? new ModelUsage(model, 0, 0);
        state.State.Usage[model] = before with
        {
            PromptTokens = before.PromptTokens + usage.PromptTokens,
            CompletionTokens = before.CompletionTokens + usage.CompletionTokens,
        };
        if (state.State.Exists) await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<ModelUsage>> GetUsage() => Task.FromResult<IReadOnlyList<ModelUsage>>(state.State.Usage.Values.OrderBy(u => u.Model).ToList());

    private void RequireExists()
    {
        if (!state.State.Exists) throw new InvalidRequestException($"tenant '{TenantId}' does not exist", "tenant");
    }
}
