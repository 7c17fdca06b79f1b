using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// A request's generations under the tenant's quotas: admitted by <see cref="ITenantGrain.BeginStream"/> (a 429 when
/// the tenant has too many streams or tokens this minute), counted as they run, and metered on the tenant when the
/// request ends, however it ends.
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

    public async ValueTask DisposeAsync() =>
        await _tenantGrain.EndStream(_stream, Model, new TokenUsage(PromptTokens, CompletionTokens, CachedPromptTokens));
}
