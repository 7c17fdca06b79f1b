using Gpt2Orleans.Gateway.Metrics;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// Counts and times a request's tokens as they arrive: its usage object, and the metrics (time to first token,
/// inter-token latency, tokens by model and tenant), measured here where the client sees them.
/// </summary>
public class TokenCounter(string tenant, string model)
{
    public string Tenant { get; } = tenant;
    public string Model { get; } = model;
    public int PromptTokens { get; private set; }
    public int CompletionTokens { get; private set; }
    public int CachedPromptTokens { get; private set; }

    /// <summary>
    /// Passes <paramref name="tokens"/> through, counting and timing them. The prompt is counted up front when its size
    /// is known here, otherwise (a session's history) from the usage on its last token.
    /// </summary>
    public async IAsyncEnumerable<GeneratedToken> Run(IAsyncEnumerable<GeneratedToken> tokens, int? promptTokens,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (promptTokens is { } known) AddPrompt(known);
        long last = System.Diagnostics.Stopwatch.GetTimestamp();
        bool first = true;
        await foreach (var token in tokens.WithCancellation(cancellationToken))
        {
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            GatewayMetrics.ObserveToken(Model, first, System.Diagnostics.Stopwatch.GetElapsedTime(last, now).TotalSeconds);
            last = now;
            first = false;
            CompletionTokens++;
            GatewayMetrics.AddTokens(Model, Tenant, "completion", 1);
            if (token.Usage is { } usage && token.Index == 0)
            {
                if (promptTokens is null) AddPrompt(usage.PromptTokens);
                CachedPromptTokens += usage.CachedPromptTokens;
            }
            yield return token;
        }
    }

    /// <summary>Counts prompt tokens that were only scored (echo with logprobs and max_tokens 0), not generated from.</summary>
    public void AddPrompt(int tokens)
    {
        PromptTokens += tokens;
        GatewayMetrics.AddTokens(Model, Tenant, "prompt", tokens);
    }

    public object Usage => new
    {
        prompt_tokens = PromptTokens, completion_tokens = CompletionTokens, total_tokens = PromptTokens + CompletionTokens,
        prompt_tokens_details = new { cached_tokens = CachedPromptTokens, audio_tokens = 0 },
        completion_tokens_details = new { reasoning_tokens = 0, audio_tokens = 0, accepted_prediction_tokens = 0, rejected_prediction_tokens = 0 },
    };
}
