using System.Text.Json;
using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.OpenAi;
using Gpt2Orleans.Gateway.Routing;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.Sessions;

/// <summary>
/// Conversations kept on the server, for chatbot backends: create (model, system prompt, default parameters), send a
/// user message and get the reply whole or streamed (only the new turn is prefilled: the session keeps its KV),
/// read the transcript, fork, delete, list. A session is reached only through its tenant, so another tenant's
/// session is a 404 exactly like a missing one. Streamed replies use the chat completion chunk shape.
/// </summary>
public static class SessionsEndpoint
{
    public static async Task<IResult> Create(HttpContext context, TenantAuthentication auth, ModelWorkers workers, IClusterClient cluster)
    {
        string tenant = await auth.AuthenticateAsync(context);
        var fields = RequestFields.Parse(await RequestFields.ReadBodyAsync(context));
        RefuseNonSessionFields(fields);
        if (StructuredOutputFields.Parse(fields) is { } structured)
            throw ApiException.BadRequest($"'{structured.Parameter}' constrains one reply: send it with the message, not as a session default", structured.Parameter, "unsupported_parameter");
        string model = fields.RequiredString("model");
        await workers.PickAsync(model, tenant); // an unknown model is a 400, one no silo serves a 503, before anything is stored
        string id = NewSessionId(fields);
        var policy = fields.String("context_policy") switch
        {
            null or "reject" => ContextPolicy.Reject,
            "drop_oldest_turns" => ContextPolicy.DropOldestTurns,
            var other => throw ApiException.BadRequest($"'context_policy' is '{other}': use reject or drop_oldest_turns", "context_policy"),
        };
        var settings = new SessionSettings
        {
            Model = model,
            SystemPrompt = fields.String("system_prompt"),
            ContextPolicy = policy,
            Defaults = SamplingFields.Parse(fields, SamplingFields.MaxTokens(fields)),
        };
        RequestContext.Set(GrainKeys.ModelContextKey, model);
        var transcript = await cluster.GetGrain<ISessionGrain>(GrainKeys.Session(tenant, id)).Create(settings);
        return Results.Json(ToObject(transcript), statusCode: StatusCodes.Status201Created);
    }

    public static async Task<IResult> Get(HttpContext context, string id, TenantAuthentication auth, IClusterClient cluster)
    {
        var session = await Find(context, id, auth, cluster);
        return Results.Json(ToObject(await session.GetTranscript()));
    }

    public static async Task<IResult> List(HttpContext context, TenantAuthentication auth, IClusterClient cluster)
    {
        string tenant = await auth.AuthenticateAsync(context);
        var ids = await cluster.GetGrain<ITenantGrain>(tenant).ListSessions();
        return Results.Json(new { @object = "list", data = ids.Order().Select(id => new { id, @object = "session" }) });
    }

    public static async Task<IResult> Fork(HttpContext context, string id, TenantAuthentication auth, IClusterClient cluster)
    {
        var session = await Find(context, id, auth, cluster);
        var fields = context.Request.ContentLength is > 0 ? RequestFields.Parse(await RequestFields.ReadBodyAsync(context)) : null;
        return Results.Json(ToObject(await session.Fork(NewSessionId(fields))), statusCode: StatusCodes.Status201Created);
    }

    public static async Task<IResult> Delete(HttpContext context, string id, TenantAuthentication auth, IClusterClient cluster)
    {
        var session = await Find(context, id, auth, cluster);
        await session.Delete();
        return Results.Json(new { id, @object = "session.deleted", deleted = true });
    }

    /// <summary>A user message and the reply: <c>{"content": "...", "stream": bool, ...sampling overrides, response_format or guided_*}</c>.</summary>
    public static async Task Send(HttpContext context, string id, TenantAuthentication auth, IClusterClient cluster)
    {
        var (session, model) = await FindWithModel(context, id, auth, cluster); // the session's model, without reading its transcript
        var fields = RequestFields.Parse(await RequestFields.ReadBodyAsync(context));
        string content = fields.String("content") ?? throw ApiException.BadRequest("'content' is required: the user's message", "content");
        bool stream = fields.Bool("stream") ?? false;
        RefuseNonSessionFields(fields);
        var overrides = SamplingFields.Parse(fields, SamplingFields.MaxTokens(fields), openAiDefaults: false) with { Constraint = StructuredOutputFields.Parse(fields) };
        var choice = new CompletionChoice(0, "", trimLeadingWhitespace: true);
        string tenant = await auth.AuthenticateAsync(context);
        string messageId = "msg-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        // The session grain admits the turn under the tenant's quotas and meters it; here it is only counted and timed.
        var metered = new TokenCounter(tenant, model);
        // Admitted (or refused, as a 4xx) before the first byte of the answer.
        await using var reply = await AdmittedStream<GeneratedToken>.StartAsync(
            metered.Run(session.Send(content, overrides, context.RequestAborted), null, context.RequestAborted), context.RequestAborted);
        if (stream)
        {
            ServerSentEvents.Start(context.Response, fields.IncludeUsage());
            await ServerSentEvents.WriteAsync(context.Response, Chunk(messageId, created, model, id, new { role = "assistant", content = "" }, null), context.RequestAborted);
        }
        await foreach (var token in reply.ReadAllAsync())
        {
            string delta = choice.Add(token);
            if (!stream) continue;
            if (delta.Length > 0)
                await ServerSentEvents.WriteAsync(context.Response, Chunk(messageId, created, model, id, new { content = delta }, null), context.RequestAborted);
            if (token.FinishReason is { } finish)
                await ServerSentEvents.WriteAsync(context.Response, Chunk(messageId, created, model, id, new { }, finish), context.RequestAborted);
        }
        if (stream)
        {
            if (fields.IncludeUsage())
                await ServerSentEvents.WriteAsync(context.Response, new { id = messageId, @object = "chat.completion.chunk", created, model, session_id = id, choices = Array.Empty<object>(), usage = metered.Usage }, context.RequestAborted);
            await ServerSentEvents.DoneAsync(context.Response, context.RequestAborted);
            return;
        }
        await context.Response.WriteAsJsonAsync(new
        {
            id = messageId, @object = "session.message", created, model, session_id = id,
            message = new { role = "assistant", content = choice.Text.TrimEnd() },
            finish_reason = choice.FinishReason,
            usage = metered.Usage,
        });
    }

    /// <summary>
    /// Fields a session's turn cannot honour are a 400 naming them: the unsupported OpenAI fields, tools, and, since a
    /// turn is one reply of text, fields asking for several replies, beams, echoed prompts or per-token
    /// log-probabilities (which its reply does not carry), unless they hold their neutral value.
    /// </summary>
    private static void RefuseNonSessionFields(RequestFields fields)
    {
        fields.RefuseUnsupported();
        fields.RefuseTools("a session's turns are user messages and replies");
        foreach (var (name, neutral) in new (string, string)[] { ("n", "1"), ("best_of", "1"), ("num_beams", "1"), ("use_beam_search", "false"),
                     ("logprobs", "false"), ("top_logprobs", "0"), ("echo", "false"), ("suffix", "\"\"") })
            if (fields.Get(name) is { } value && value.GetRawText() != neutral && !(neutral == "false" && value.GetRawText() == "0"))
                throw ApiException.BadRequest($"'{name}' is not a session field: a session's turn is one reply of text (use /v1/chat/completions for it)", name, "unsupported_parameter");
    }

    /// <summary>The tenant's session, with its model in the RequestContext so it activates where the model is served; a 404 when the tenant has no such session.</summary>
    private static async Task<ISessionGrain> Find(HttpContext context, string id, TenantAuthentication auth, IClusterClient cluster) =>
        (await FindWithModel(context, id, auth, cluster)).Session;

    private static async Task<(ISessionGrain Session, string Model)> FindWithModel(HttpContext context, string id, TenantAuthentication auth, IClusterClient cluster)
    {
        string tenant = await auth.AuthenticateAsync(context);
        if (!GrainKeys.IsValidId(id)) throw new SessionNotFoundException(id);
        string model = await cluster.GetGrain<ITenantGrain>(tenant).GetSessionModel(id) ?? throw new SessionNotFoundException(id);
        RequestContext.Set(GrainKeys.ModelContextKey, model);
        return (cluster.GetGrain<ISessionGrain>(GrainKeys.Session(tenant, id)), model);
    }

    /// <summary>The id the request names (checked), or a new one.</summary>
    private static string NewSessionId(RequestFields? fields) =>
        GrainKeys.ValidId(fields?.String("id") ?? "sess-" + Guid.NewGuid().ToString("N"), "id");

    private static object Chunk(string id, long created, string model, string sessionId, object delta, string? finishReason) => new
    {
        id, @object = "chat.completion.chunk", created, model, session_id = sessionId,
        choices = new[] { new { index = 0, delta, logprobs = (object?)null, finish_reason = finishReason } },
    };

    private static object ToObject(SessionTranscript t) => new
    {
        id = t.SessionId, @object = "session", model = t.Model, system_prompt = t.SystemPrompt,
        created_at = t.CreatedAt.ToUnixTimeSeconds(), token_count = t.TokenCount,
        context_policy = t.ContextPolicy == ContextPolicy.DropOldestTurns ? "drop_oldest_turns" : "reject",
        messages = t.Turns.Select(turn => new { role = turn.Role, content = turn.Text }),
    };
}
