using Prometheus;

namespace Gpt2Orleans.Gateway.Metrics;

/// <summary>
/// The gateway's Prometheus instruments (prometheus-net, exported at <c>/metrics</c> with its HTTP request counts and
/// durations by route and status, and, in a co-hosted silo, the engine's own meters). Tokens and latencies are
/// measured here, where the client sees them.
/// </summary>
public static class GatewayMetrics
{
    // From 1 ms to ~65 s: inter-token latencies sit at the bottom, long prefills at the top.
    private static readonly double[] LatencyBuckets = Histogram.ExponentialBuckets(0.001, 2, 17);

    public static readonly Counter Tokens = Prometheus.Metrics.CreateCounter("gpt2o_tokens_total",
        "Tokens by model and kind (prompt or completion)", "model", "kind");

    /// <summary>Per-tenant series, exported only to the admin key (<c>/admin/metrics</c>): tenant ids are not for anyone who can reach /metrics.</summary>
    public static readonly CollectorRegistry TenantRegistry = Prometheus.Metrics.NewCustomRegistry();

    public static readonly Counter TenantTokens = Prometheus.Metrics.WithCustomRegistry(TenantRegistry).CreateCounter("gpt2o_tenant_tokens_total",
        "Tokens by model, tenant and kind (prompt or completion)", "model", "tenant", "kind");

    /// <summary>Requests Kestrel itself refused before they reached the app (they are not in the HTTP request metrics).</summary>
    public static readonly Counter ServerRejections = Prometheus.Metrics.CreateCounter("gpt2o_http_rejected_total",
        "Requests the HTTP server refused before routing (malformed, too large, too slow), by status code", "code");

    public static readonly Histogram TimeToFirstToken = Prometheus.Metrics.CreateHistogram("gpt2o_time_to_first_token_seconds",
        "From sending a generation to its first token", new HistogramConfiguration { LabelNames = ["model"], Buckets = LatencyBuckets });

    public static readonly Histogram InterTokenLatency = Prometheus.Metrics.CreateHistogram("gpt2o_inter_token_latency_seconds",
        "Between consecutive tokens of a generation", new HistogramConfiguration { LabelNames = ["model"], Buckets = LatencyBuckets });

    public static readonly Gauge Sequences = Prometheus.Metrics.CreateGauge("gpt2o_sequences",
        "Sequences per model worker: running or waiting (the queue)", "model", "silo", "state");

    public static readonly Gauge KvBlocks = Prometheus.Metrics.CreateGauge("gpt2o_kv_blocks",
        "KV cache blocks per model worker: used, free or cached (free, holding reusable prefixes)", "model", "silo", "state");

    public static readonly Gauge ModelLoaded = Prometheus.Metrics.CreateGauge("gpt2o_model_loaded",
        "1 when the model worker has its model loaded", "model", "silo");
}
