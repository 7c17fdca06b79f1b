using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>/metrics in Prometheus' text format and the OpenAPI document, over real HTTP.</summary>
[Collection(GatewayCollection.Name)]
public sealed class MetricsTests(GatewayFixture fixture)
{
    [Fact]
    public async Task Metrics_show_requests_tokens_latencies_and_each_worker_s_queue_and_kv()
    {
        using var client = fixture.Client();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hello", max_tokens = 3 }))).StatusCode);
        var response = await client.GetAsync("/metrics");
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n');
        double Value(string prefix) => double.Parse(Assert.Single(lines, l => l.StartsWith(prefix, StringComparison.Ordinal)).Split(' ')[^1],
            System.Globalization.CultureInfo.InvariantCulture);

        Assert.True(Value("http_requests_received_total{code=\"200\",method=\"POST\",controller=\"\",action=\"\",endpoint=\"/v1/completions\"}") >= 1);
        Assert.True(Value("gpt2o_tokens_total{model=\"alpha\",kind=\"completion\"}") >= 3);
        // Anyone who reaches /metrics reads it: no tenant id there; per-tenant series go to the admin key.
        Assert.DoesNotContain(lines, l => l.Contains("tenant=\"dev\"", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client(key: null).GetAsync("/admin/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("/admin/metrics")).StatusCode);
        var tenantLines = (await (await fixture.Client(key: GatewayFixture.AdminKey).GetAsync("/admin/metrics")).Content.ReadAsStringAsync()).Split('\n');
        Assert.True(double.Parse(Assert.Single(tenantLines, l => l.StartsWith("gpt2o_tenant_tokens_total{model=\"alpha\",tenant=\"dev\",kind=\"completion\"}", StringComparison.Ordinal)).Split(' ')[^1],
            System.Globalization.CultureInfo.InvariantCulture) >= 3);
        Assert.True(Value("gpt2o_time_to_first_token_seconds_count{model=\"alpha\"}") >= 1);
        Assert.True(Value("gpt2o_inter_token_latency_seconds_count{model=\"alpha\"}") >= 2);
        Assert.Contains(lines, l => l.StartsWith("gpt2o_sequences{model=\"alpha\",silo=", StringComparison.Ordinal) && l.Contains("state=\"waiting\""));
        Assert.Contains(lines, l => l.StartsWith("gpt2o_kv_blocks{model=\"alpha\",silo=", StringComparison.Ordinal) && l.Contains("state=\"free\""));
        Assert.Contains(lines, l => l.StartsWith("gpt2o_model_loaded{model=\"sentiment\"", StringComparison.Ordinal) && l.EndsWith(" 1"));
        // vLLM's names for the same quantities, labelled model_name, for dashboards written for vLLM.
        Assert.True(Value("vllm:generation_tokens_total{model_name=\"alpha\"}") >= 3);
        Assert.True(Value("vllm:prompt_tokens_total{model_name=\"alpha\"}") >= 1);
        Assert.True(Value("vllm:time_to_first_token_seconds_count{model_name=\"alpha\"}") >= 1);
        Assert.True(Value("vllm:inter_token_latency_seconds_count{model_name=\"alpha\"}") >= 2);
        foreach (var gauge in new[] { "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc" })
            Assert.Contains(lines, l => l.StartsWith($"{gauge}{{model_name=\"alpha\",silo=", StringComparison.Ordinal));
        Assert.InRange(double.Parse(lines.First(l => l.StartsWith("vllm:kv_cache_usage_perc{model_name=\"alpha\"", StringComparison.Ordinal)).Split(' ')[^1],
            System.Globalization.CultureInfo.InvariantCulture), 0, 1);
        // Co-hosted, the engine's own meters come too (System.Diagnostics.Metrics through prometheus-net).
        Assert.Contains(lines, l => l.StartsWith("gpt2orleans_engine_gpt2o_engine_sequences_running{", StringComparison.Ordinal) && l.Contains("model=\"alpha\""));
        Assert.DoesNotContain(lines, l => l.StartsWith("private_internaldiagnostics", StringComparison.Ordinal));
    }

    /// <summary>deploy/grafana's dashboard: every metric its queries read is one /metrics exports (after a request and its tokens).</summary>
    [Fact]
    public async Task Every_metric_the_grafana_dashboard_queries_is_exported()
    {
        using var client = fixture.Client();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hi", max_tokens = 2 }))).StatusCode);
        var exported = (await client.GetStringAsync("/metrics")).Split('\n').Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l[..l.IndexOfAny(['{', ' '])]).ToHashSet();
        // A labelled counter shows once a label has a value (Kestrel's refusals: none here), so declared ones count too.
        foreach (var field in typeof(Gpt2Orleans.Gateway.Metrics.GatewayMetrics).GetFields().Where(f => f.GetValue(null) is Prometheus.Counter))
            exported.Add(((Prometheus.Counter)field.GetValue(null)!).Name);
        var dashboard = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Gpt2Orleans.Tests.Shared.Repository.Root, "deploy", "grafana", "gpt2orleans.json"))).RootElement;
        var queries = dashboard.GetProperty("panels").EnumerateArray().SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!).ToList();
        Assert.True(queries.Count >= 8, "the dashboard has its panels");
        var used = queries.SelectMany(q => System.Text.RegularExpressions.Regex.Matches(q, @"\b(gpt2o_\w+|http_\w+)").Select(m => m.Value)).ToHashSet();
        foreach (var metric in used) Assert.Contains(metric, exported);
        foreach (var needed in new[] { "gpt2o_time_to_first_token_seconds_bucket", "gpt2o_inter_token_latency_seconds_bucket", "gpt2o_tokens_total", "gpt2o_kv_blocks", "gpt2o_sequences", "http_requests_received_total" })
            Assert.Contains(needed, used); // TTFT and ITL percentiles, tokens/s, KV, running and waiting, requests and errors
    }

    [Fact]
    public async Task The_openapi_document_lists_the_api()
    {
        using var client = fixture.Client(key: null);
        var document = await ReadJson(await client.GetAsync("/openapi/v1.json"));
        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        foreach (var path in new[] { "/v1/completions", "/v1/chat/completions", "/v1/models", "/v1/sessions", "/v1/sessions/{id}/messages", "/v1/classifications", "/admin/tenants" })
            Assert.Contains(path, paths);
    }
}
