using System.Text.Json;
using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Routing;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// <c>POST /v1/completions</c>: each prompt is tokenized by a worker of the model, generated there (n choices per
/// prompt, forked from one prefill), and answered whole or streamed as OpenAI streams. echo puts the prompt in
/// front; echo with logprobs and max_tokens 0 returns the prompt's token log-probabilities (perplexity).
/// Closing the connection cancels the generation, which frees its KV at once. The tenant's stream and token
/// quotas apply, and its usage is metered.
/// </summary>
public static class CompletionsEndpoint
{
    public static async Task Handle(HttpContext context, TenantAuthentication auth, ModelWorkers workers, IClusterClient cluster)
    {
        string tenant = await auth.AuthenticateAsync(context);
        var body = await JsonSerializer.DeserializeAsync<JsonElement>(context.Request.Body, cancellationToken: context.RequestAborted);
        var request = CompletionRequest.Parse(body);
        var (worker, _) = await workers.PickAsync(request.Model, tenant);
        var prompts = new List<(IReadOnlyList<int> Ids, string Text)>();
        foreach (var prompt in request.Prompts)
            prompts.Add(prompt.TokenIds is { } ids ? (ids, "") : (await worker.Tokenize(prompt.Text!), prompt.Text!));

        var tenantGrain = cluster.GetGrain<ITenantGrain>(tenant);
        var stream = await tenantGrain.BeginStream(request.Model);
        int promptTokens = 0, completionTokens = 0;
        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var choices = new List<CompletionChoice>();
        try
        {
            if (request.Stream) ServerSentEvents.Start(context.Response);
            for (int p = 0; p < prompts.Count; p++)
            {
                var (ids, text) = prompts[p];
                promptTokens += ids.Count;
                var mine = Enumerable.Range(0, request.N)
                    .Select(k => new CompletionChoice(p * request.N + k, request.Parameters.StopStrings ?? [], request.Echo ? text : "")).ToList();
                choices.AddRange(mine);
                if (request.Echo && request.Logprobs is { } top) await AddPromptLogprobs(worker, tenant, ids, top, mine);
                if (request.Stream && request.Echo)
                    foreach (var choice in mine) await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, choice, choice.Text, null), context.RequestAborted);
                if (request.Parameters.MaxNewTokens == 0)
                {
                    foreach (var choice in mine) choice.Finish("length");
                    continue;
                }
                await foreach (var token in worker.Generate(new ModelRequest { Tenant = tenant, PromptIds = ids, Parameters = request.Parameters }, context.RequestAborted)
                                   .WithCancellation(context.RequestAborted))
                {
                    var choice = mine[token.Index];
                    string delta = choice.Add(token);
                    completionTokens++;
                    if (request.Stream && (delta.Length > 0 || token.FinishReason is not null || request.Logprobs is not null))
                        await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, choice, delta, token), context.RequestAborted);
                }
            }
        }
        finally
        {
            await tenantGrain.EndStream(stream, request.Model, new TokenUsage(promptTokens, completionTokens, 0));
        }

        var usage = new { prompt_tokens = promptTokens, completion_tokens = completionTokens, total_tokens = promptTokens + completionTokens };
        if (request.Stream)
        {
            if (request.IncludeUsage)
                await ServerSentEvents.WriteAsync(context.Response, new { id, @object = "text_completion", created, model = request.Model, choices = Array.Empty<object>(), usage }, context.RequestAborted);
            await ServerSentEvents.DoneAsync(context.Response, context.RequestAborted);
            return;
        }
        await context.Response.WriteAsJsonAsync(new
        {
            id, @object = "text_completion", created, model = request.Model,
            choices = choices.Select(c => new { text = c.Text, index = c.Index, logprobs = c.LogprobsObject(request.Logprobs is not null), finish_reason = c.FinishReason }),
            usage,
        });
    }

    private static object Chunk(string id, long created, CompletionRequest request, CompletionChoice choice, string delta, GeneratedToken? token) => new
    {
        id, @object = "text_completion", created, model = request.Model,
        choices = new[]
        {
            new
            {
                text = delta, index = choice.Index,
                logprobs = request.Logprobs is null || token?.Logprobs is not { } l ? null : new
                {
                    tokens = new[] { token.Text }, token_logprobs = new[] { l.Logprob },
                    top_logprobs = new[] { l.Top.GroupBy(t => t.Text).ToDictionary(g => g.Key, g => g.First().Logprob) },
                    text_offset = new[] { choice.TextOffsets.LastOrDefault() },
                },
                finish_reason = token?.FinishReason,
            },
        },
    };

    /// <summary>echo + logprobs: the prompt's own tokens with their log-probabilities (the first has none), as OpenAI returns them.</summary>
    private static async Task AddPromptLogprobs(IModelGrain worker, string tenant, IReadOnlyList<int> ids, int top, List<CompletionChoice> choices)
    {
        var scores = await worker.Score(tenant, ids, top);
        var texts = await worker.DecodeTokens(ids);
        foreach (var choice in choices)
            for (int i = 0; i < ids.Count; i++)
                choice.AddLogprob(texts[i], scores[i]?.Logprob, scores[i]?.Top ?? []);
    }
}
