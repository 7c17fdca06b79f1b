using System.Diagnostics;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// One span per engine request (<see cref="SourceName"/>, System.Diagnostics: a host's OpenTelemetry tracer listens
/// to it), a child of the caller's span (the model grain's call): how long it queued, its prefill (admission to the
/// first token), its decode, its prompt and generated tokens, and how it ended; a classification request's likewise
/// (queue time, compute, tokens). Without a listener nothing is made.
/// </summary>
public static class EngineTracing
{
    public const string SourceName = "Gpt2Orleans.Engine";
    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>The request's span, started under the caller's current span without becoming the caller's current one.</summary>
    internal static Activity? Start(string model, EngineRequestState request)
    {
        var span = Detached(request.Score is null ? "engine generate" : "engine score");
        if (span is null) return null;
        span.SetTag("gen_ai.request.model", model);
        span.SetTag("gen_ai.usage.input_tokens", request.Request.PromptIds.Count);
        span.SetTag("gen_ai.request.max_tokens", request.MaxNewTokens);
        span.SetTag("gpt2o.tenant", request.Tenant);
        return span;
    }

    /// <summary>A span under the caller's current one that does not become the caller's current one: it ends on an engine's loop.</summary>
    private static Activity? Detached(string name)
    {
        var caller = Activity.Current;
        var span = Source.StartActivity(name, ActivityKind.Internal);
        Activity.Current = caller;
        return span;
    }

    /// <summary>
    /// A classification request's span (<see cref="OnePassEngine"/>), ended when <paramref name="result"/>
    /// completes however it does: queue time, the batch's compute, its tokens.
    /// </summary>
    internal static void TraceClassification(string head, string tenant, int tokens, Task result, Func<DateTime?> startedAt)
    {
        var span = Detached($"engine classify {head}");
        if (span is null) return;
        span.SetTag("gen_ai.usage.input_tokens", tokens);
        span.SetTag("gpt2o.tenant", tenant);
        var submitted = DateTime.UtcNow;
        result.ContinueWith(done =>
        {
            var now = DateTime.UtcNow;
            var started = startedAt() ?? now;
            span.SetTag("gpt2o.queue_ms", (started - submitted).TotalMilliseconds);
            span.SetTag("gpt2o.compute_ms", (now - started).TotalMilliseconds);
            if (done.IsCanceled) span.SetTag("gpt2o.cancelled", true);
            else if (done.Exception?.InnerException is { } error) span.SetStatus(ActivityStatusCode.Error, error.Message);
            span.Stop();
        }, TaskScheduler.Default);
    }

    /// <summary>Ends the request's span with its phases' durations and tokens, and the error it failed with (if any).</summary>
    internal static void End(EngineRequestState request, Exception? error = null)
    {
        if (request.Span is not { } span) return;
        request.Span = null;
        var now = DateTime.UtcNow;
        var admitted = request.AdmittedAt ?? now;
        var first = request.FirstTokenAt ?? now;
        span.SetTag("gpt2o.queue_ms", (admitted - request.SubmittedAt).TotalMilliseconds);
        span.SetTag("gpt2o.prefill_ms", (first - admitted).TotalMilliseconds);
        span.SetTag("gpt2o.decode_ms", (now - first).TotalMilliseconds);
        span.SetTag("gen_ai.usage.output_tokens", request.GeneratedTokens);
        if (error is OperationCanceledException) span.SetTag("gpt2o.cancelled", true);
        else if (error is not null) span.SetStatus(ActivityStatusCode.Error, error.Message);
        span.Stop();
    }
}
