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
        var body = await RequestFields.ReadBodyAsync(context);
        var request = CompletionRequest.Parse(body);
        var (worker, model) = await workers.PickAsync(request.Model, tenant, checkTenant: false); // BeginStream checks it
        string fingerprint = SystemFingerprint.Of(model.Definition);
        var prompts = new List<(IReadOnlyList<int> Ids, string Text)>();
        foreach (var prompt in request.Prompts)
            prompts.Add(prompt.TokenIds is { } ids ? (ids, "") : (await worker.Tokenize(prompt.Text!), prompt.Text!));

        // best_of > n: sample best_of candidates with their log-probabilities and keep the n most likely.
        var parameters = request.BestOf > request.N
            ? request.Parameters with { NumReturnSequences = request.BestOf, Logprobs = request.Logprobs ?? 0 }
            : request.Parameters;
        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var choices = new List<CompletionChoice>();
        await using var metered = await MeteredGeneration.BeginAsync(cluster, tenant, request.Model);
        // Every prompt's generation is admitted (or refused, as a 4xx) before the first byte of the answer; they then
        // run side by side in the engine and are answered prompt by prompt.
        var runs = new List<(List<CompletionChoice> Candidates, AdmittedStream<GeneratedToken>? Generation)>();
        try
        {
            for (int p = 0; p < prompts.Count; p++)
            {
                var (ids, text) = prompts[p];
                var candidates = Enumerable.Range(0, request.BestOf)
                    .Select(k => new CompletionChoice(p * request.N + k, request.Echo ? text : "")).ToList();
                if (request.Echo && request.Logprobs is { } top) await AddPromptLogprobs(worker, tenant, ids, top, candidates);
                if (request.Parameters.MaxNewTokens == 0)
                {
                    metered.AddPrompt(ids.Count);
                    foreach (var choice in candidates) choice.Finish("length");
                    runs.Add((candidates, null));
                    continue;
                }
                var generation = worker.Generate(new ModelRequest { Tenant = tenant, PromptIds = ids, Parameters = parameters }, context.RequestAborted);
                runs.Add((candidates, await AdmittedStream<GeneratedToken>.StartAsync(metered.Run(generation, ids.Count, context.RequestAborted), context.RequestAborted)));
            }
            if (request.Stream) ServerSentEvents.Start(context.Response, request.IncludeUsage);
            for (int p = 0; p < runs.Count; p++)
            {
                var (candidates, generation) = runs[p];
                if (request.Stream && request.Echo)
                    foreach (var choice in candidates) await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, fingerprint, choice, choice.Text, null), context.RequestAborted);
                if (generation is not null)
                    await foreach (var token in generation.ReadAllAsync())
                    {
                        var choice = candidates[token.Index];
                        string delta = choice.Add(token);
                        if (request.Stream && (delta.Length > 0 || token.FinishReason is not null || request.Logprobs is not null))
                            await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, fingerprint, choice, delta, token), context.RequestAborted);
                    }
                var best = generation is not null && request.BestOf > request.N
                    ? candidates.OrderByDescending(c => c.CumulativeLogprob).Take(request.N).ToList()
                    : candidates.Take(request.N).ToList();
                for (int k = 0; k < best.Count; k++) best[k].Index = p * request.N + k;
                choices.AddRange(best);
            }
        }
        finally
        {
            foreach (var (_, generation) in runs) if (generation is not null) await generation.DisposeAsync();
        }

        if (request.Stream)
        {
            if (request.IncludeUsage)
                await ServerSentEvents.WriteAsync(context.Response, new { id, @object = "text_completion", created, model = request.Model, system_fingerprint = fingerprint, choices = Array.Empty<object>(), usage = metered.Usage }, context.RequestAborted);
            await ServerSentEvents.DoneAsync(context.Response, context.RequestAborted);
            return;
        }
        await context.Response.WriteAsJsonAsync(new
        {
            id, @object = "text_completion", created, model = request.Model, system_fingerprint = fingerprint,
            choices = choices.Select(c => new { text = c.Text, index = c.Index, logprobs = c.LegacyLogprobs(request.Logprobs is not null), finish_reason = c.FinishReason }),
            usage = metered.Usage,
        });
    }

    private static object Chunk(string id, long created, CompletionRequest request, string fingerprint, CompletionChoice choice, string delta, GeneratedToken? token) => new
    {
        id, @object = "text_completion", created, model = request.Model, system_fingerprint = fingerprint,
        choices = new[]
        {
            new
            {
                text = delta, index = choice.Index,
                logprobs = choice.LegacyLogprobs(request.Logprobs is not null && token?.Logprobs is not null, from: choice.LogprobCount - 1),
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
                choice.AddLogprob(scores[i]?.Bytes ?? System.Text.Encoding.UTF8.GetBytes(texts[i]), scores[i]?.Logprob, scores[i]?.Top ?? []);
    }
}
