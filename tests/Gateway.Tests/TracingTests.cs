using System.Diagnostics;
using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>The app with tracing on (Tracing:Enabled) and OpenTelemetry's in-memory exporter beside its own.</summary>
public sealed class TracingFixture : GatewayFixture
{
    public List<Activity> Spans { get; } = [];
    protected override IEnumerable<string> SiloArguments => [.. base.SiloArguments, "--Tracing:Enabled", "true"];
    protected override void ConfigureServices(IServiceCollection services) =>
        services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(Spans));
}

/// <summary>
/// Alone: a tracer in this process listens to every app's requests and every grain call, so running beside the other
/// suites its exporter would hold their spans too (a load test's memory check saw them).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TracingCollection
{
    public const string Name = "tracing";
}

/// <summary>
/// One session turn over HTTP is one trace: the HTTP request's span, the grain calls of the turn under it (session,
/// then model worker), and the engine request's span under those, with its queue time, prefill, decode and tokens.
/// </summary>
[Collection(TracingCollection.Name)]
public sealed class TracingTests(TracingFixture fixture) : IClassFixture<TracingFixture>
{
    [Fact]
    public async Task A_session_turn_is_one_trace_from_the_http_request_to_the_engine()
    {
        using var client = fixture.Client();
        var created = await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model, temperature = 0, max_tokens = 5 }));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        string id = (await ReadJson(created)).GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Hello there" }))).StatusCode);

        Activity? request = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); // the server span ends as the response completes
        while (request is null && DateTime.UtcNow < deadline)
        {
            lock (fixture.Spans) request = fixture.Spans.FirstOrDefault(s => s.Kind == ActivityKind.Server && s.GetTagItem("url.path") as string == $"/v1/sessions/{id}/messages");
            if (request is null) await Task.Delay(50);
        }
        Assert.NotNull(request);
        Assert.Equal("/v1/sessions/{id}/messages", request.GetTagItem("http.route"));
        List<Activity> trace;
        lock (fixture.Spans) trace = fixture.Spans.Where(s => s.TraceId == request.TraceId).ToList();
        var byId = trace.ToDictionary(s => s.SpanId);
        bool Under(Activity span, Activity ancestor)
        {
            for (var at = span; byId.TryGetValue(at.ParentSpanId, out var parent); at = parent)
                if (parent.SpanId == ancestor.SpanId) return true;
            return false;
        }

        var session = Assert.Single(trace, s => s.Kind == ActivityKind.Client && s.DisplayName.Contains("ISessionGrain") && s.DisplayName.Contains("Send") && Under(s, request));
        var worker = trace.Where(s => s.DisplayName.Contains("IModelGrain") && Under(s, session)).ToList();
        Assert.NotEmpty(worker); // the session's call to its model's worker, inside the session's turn
        var engine = Assert.Single(trace, s => s.Source.Name == "Gpt2Orleans.Engine");
        Assert.Contains(worker, w => Under(engine, w));
        Assert.Equal("engine generate", engine.DisplayName);
        Assert.Equal(5, engine.GetTagItem("gen_ai.usage.output_tokens"));
        Assert.True((int)engine.GetTagItem("gen_ai.usage.input_tokens")! > 2);
        foreach (var phase in new[] { "gpt2o.queue_ms", "gpt2o.prefill_ms", "gpt2o.decode_ms" })
            Assert.InRange((double)engine.GetTagItem(phase)!, 0, 60_000);
        Assert.Equal(GatewayFixture.Model, engine.GetTagItem("gen_ai.request.model"));
        Assert.Equal(Inference.Engine.EngineTracing.SourceName, Telemetry.Tracing.Sources[0]); // the name the gateway listens to
    }

    [Fact]
    public async Task A_classification_request_traces_to_its_engine_span()
    {
        using var client = fixture.Client();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/classifications", Json(new { model = GatewayFixture.Sentiment, input = new[] { "a fine day", "a bad one" } }))).StatusCode);
        List<Activity> classify = [];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            lock (fixture.Spans)
            {
                var request = fixture.Spans.LastOrDefault(s => s.Kind == ActivityKind.Server && s.GetTagItem("url.path") as string == "/v1/classifications");
                if (request is not null) classify = fixture.Spans.Where(s => s.TraceId == request.TraceId && s.DisplayName == "engine classify sequence").ToList();
            }
            if (classify.Count == 2) break;
            await Task.Delay(50);
        }
        Assert.Equal(2, classify.Count); // one per input text, in the HTTP request's trace
        Assert.All(classify, span =>
        {
            Assert.True((int)span.GetTagItem("gen_ai.usage.input_tokens")! >= 2);
            Assert.InRange((double)span.GetTagItem("gpt2o.queue_ms")!, 0, 60_000);
            Assert.InRange((double)span.GetTagItem("gpt2o.compute_ms")!, 0, 60_000);
        });
    }
}
