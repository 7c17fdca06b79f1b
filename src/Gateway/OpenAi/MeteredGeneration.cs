using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// A request's generations under the tenant's quotas: admitted by <see cref="ITenantGrain.BeginStream"/> (a 429 when
/// the tenant has too many streams or tokens this minute), counted as they run, and metered on the tenant when the
/// request ends, however it ends. The client's answer does not wait for that bookkeeping (a grain call's worth of
/// latency saved on every request), so the tenant sees the stream end a moment after the client does.
/// </summary>
public sealed class MeteredGeneration : TokenCounter, IAsyncDisposable
{
    private readonly ITenantGrain _tenantGrain;
    private readonly Guid _stream;

    private MeteredGeneration(ITenantGrain tenantGrain, Guid stream, string tenant, string model) : base(tenant, model)
    {
        _tenantGrain = tenantGrain;
        _stream = stream;
    }

    public static async Task<MeteredGeneration> BeginAsync(IGrainFactory grains, string tenant, string model)
    {
        var tenantGrain = grains.GetGrain<ITenantGrain>(tenant);
        return new MeteredGeneration(tenantGrain, await tenantGrain.BeginStream(model), tenant, model);
    }

    public ValueTask DisposeAsync()
    {
        var ended = _tenantGrain.EndStream(_stream, Model, new TokenUsage(PromptTokens, CompletionTokens, CachedPromptTokens));
        // Observed so a failure (the tenant grain's silo going down) is not an unobserved task exception; the stream
        // slot then frees itself when that activation goes.
        _ = ended.ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
        return ValueTask.CompletedTask;
    }
}
