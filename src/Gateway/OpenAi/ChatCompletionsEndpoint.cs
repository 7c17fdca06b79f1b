using System.Text.Json;
using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Routing;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// <c>POST /v1/chat/completions</c>: the messages are rendered as plain text by the model's chat template (GPT-2 has
/// none of its own; see <see cref="ChatTemplate"/>), generated like a completion that stops where the template's next
/// user message would begin (plus any stop strings of the request), and answered as OpenAI answers: whole, or
/// streamed as "chat.completion.chunk" events. The reply's leading whitespace is dropped.
/// </summary>
public static class ChatCompletionsEndpoint
{
    public static async Task Handle(HttpContext context, TenantAuthentication auth, ModelWorkers workers, IClusterClient cluster)
    {
        string tenant = await auth.AuthenticateAsync(context);
        var body = await RequestFields.ReadBodyAsync(context);
        var request = ChatCompletionRequest.Parse(body);
        var (worker, model) = await workers.PickAsync(request.Model, tenant, checkTenant: false); // BeginStream checks it
        var template = model.Definition.Chat;
        var ids = await worker.Tokenize(template.Render(request.Messages));
        // A constrained reply ends where its grammar does; the template's stops (the next user turn) would only cut it.
        var stops = request.Parameters.Constraint is null ? template.StopsWith(request.Parameters.StopStrings) : request.Parameters.StopStrings;
        // Without max_tokens the reply is bounded by the room left in the context, as OpenAI's is (HF's max_length,
        // which the engine bounds by the model's context), here at most ChatTemplate.DefaultReplyTokens.
        var parameters = request.Parameters with
        {
            StopStrings = stops,
            MaxLength = request.Parameters.MaxNewTokens is null ? ids.Count + ChatTemplate.DefaultReplyTokens : null,
        };

        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        string fingerprint = SystemFingerprint.Of(model.Definition);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var choices = Enumerable.Range(0, request.N).Select(k => new CompletionChoice(k, "", trimLeadingWhitespace: true)).ToList();
        var calls = request.Tools is { } tools ? choices.Select(_ => new ToolCallReply(tools.Names)).ToList() : null;
        await using var metered = await MeteredGeneration.BeginAsync(cluster, tenant, request.Model);
        // Admitted (or refused, as a 4xx) before the first byte of the answer.
        await using var generation = parameters.MaxNewTokens is null or > 0
            ? await AdmittedStream<GeneratedToken>.StartAsync(metered.Run(
                worker.Generate(new ModelRequest { Tenant = tenant, PromptIds = ids, Parameters = parameters }, context.RequestAborted), ids.Count, context.RequestAborted),
                context.RequestAborted)
            : null;
        if (request.Stream)
        {
            ServerSentEvents.Start(context.Response, request.IncludeUsage);
            foreach (var choice in choices)
                await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, fingerprint, choice.Index,
                    new { role = "assistant", content = calls is null ? "" : null }, null, null), context.RequestAborted);
        }
        if (generation is not null)
        {
            await foreach (var token in generation.ReadAllAsync())
            {
                var choice = choices[token.Index];
                string delta = choice.Add(token);
                if (calls is not null)
                {
                    var (headNow, arguments) = calls[token.Index].Update(choice.Text, token.FinishReason is not null, token.FinishReason == "stop");
                    if (request.Stream) await WriteToolCallDelta(context, calls[token.Index], headNow, arguments, id, created, request, fingerprint, choice.Index);
                }
                else if (request.Stream && (delta.Length > 0 || (request.Logprobs && token.Logprobs is not null)))
                    await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, fingerprint, choice.Index, new { content = delta },
                        choice.ChatLogprobs(request.Logprobs && token.Logprobs is not null, request.TopLogprobs, from: choice.LogprobCount - 1), null), context.RequestAborted);
                if (request.Stream && token.FinishReason is { } finish)
                    await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, fingerprint, choice.Index, new { }, null,
                        calls is null ? finish : ToolFinish(finish)), context.RequestAborted);
            }
        }
        else
        {
            metered.AddPrompt(ids.Count);
            foreach (var choice in choices) choice.Finish("length");
        }

        if (request.Stream)
        {
            if (request.IncludeUsage)
                await ServerSentEvents.WriteAsync(context.Response, new { id, @object = "chat.completion.chunk", created, model = request.Model, system_fingerprint = fingerprint, service_tier = "default", choices = Array.Empty<object>(), usage = metered.Usage }, context.RequestAborted);
            await ServerSentEvents.DoneAsync(context.Response, context.RequestAborted);
            return;
        }
        await context.Response.WriteAsJsonAsync(new
        {
            id, @object = "chat.completion", created, model = request.Model, system_fingerprint = fingerprint, service_tier = "default",
            choices = choices.Select(c => new
            {
                index = c.Index,
                message = calls is null
                    ? (object)new { role = "assistant", content = c.Text, refusal = (string?)null }
                    : new { role = "assistant", content = (string?)null, refusal = (string?)null, tool_calls = calls[c.Index].Message() is { } call ? new[] { call } : [] },
                logprobs = c.ChatLogprobs(request.Logprobs, request.TopLogprobs),
                finish_reason = calls is null || c.FinishReason is null ? c.FinishReason : ToolFinish(c.FinishReason),
            }),
            usage = metered.Usage,
        });
    }

    /// <summary>A finished call ends with "tool_calls", as OpenAI's do; one cut by max_tokens stays "length".</summary>
    private static string ToolFinish(string finish) => finish == "stop" ? "tool_calls" : finish;

    /// <summary>OpenAI's streamed tool call: the call's id, type and name once, then pieces of its arguments.</summary>
    private static async Task WriteToolCallDelta(HttpContext context, ToolCallReply call, bool headNow, string arguments, string id, long created, ChatCompletionRequest request, string fingerprint, int index)
    {
        if (headNow)
            await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, fingerprint, index,
                new { tool_calls = new[] { new { index = 0, id = call.Id, type = "function", function = new { name = call.Name, arguments = "" } } } }, null, null), context.RequestAborted);
        if (arguments.Length > 0)
            await ServerSentEvents.WriteAsync(context.Response, Chunk(id, created, request, fingerprint, index,
                new { tool_calls = new[] { new { index = 0, function = new { arguments } } } }, null, null), context.RequestAborted);
    }

    private static object Chunk(string id, long created, ChatCompletionRequest request, string fingerprint, int index, object delta, object? logprobs, string? finishReason) => new
    {
        id, @object = "chat.completion.chunk", created, model = request.Model, system_fingerprint = fingerprint, service_tier = "default",
        choices = new[] { new { index, delta, logprobs, finish_reason = finishReason } },
    };
}
