using Gpt2Orleans.Grains;
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

    public static readonly Counter ModelLoads = Prometheus.Metrics.CreateCounter("gpt2o_model_loads_total",
        "Replica loads over the cluster, per model (reloads included)", "model");
    public static readonly Counter ModelReloads = Prometheus.Metrics.CreateCounter("gpt2o_model_reloads_total",
        "Loads of a model version on a silo that had evicted it", "model");
    public static readonly Counter ModelEvictions = Prometheus.Metrics.CreateCounter("gpt2o_model_evictions_total",
        "Replicas evicted or unloaded, per model", "model");
    public static readonly Counter ModelLoadFailures = Prometheus.Metrics.CreateCounter("gpt2o_model_load_failures_total",
        "Replica loads that failed, per model", "model");
    public static readonly Gauge ModelState = Prometheus.Metrics.CreateGauge("gpt2o_model_state",
        "1 for the model's state over the cluster (loaded, loading, available or failed), 0 for the others", "model", "state");
    public static readonly Gauge ModelMemory = Prometheus.Metrics.CreateGauge("gpt2o_model_memory_bytes",
        "Bytes a model's replica holds on a silo (weights and KV pool), any version", "model", "silo");

    /// <summary>
    /// The same quantities under vLLM's names and its model_name label, so dashboards and autoscalers written for vLLM
    /// read us unchanged. prometheus-net refuses the colon in vLLM's names (Prometheus itself accepts it), so they are
    /// registered here as <c>vllm_…</c> and <see cref="MetricsEndpoint"/> writes them out as <c>vllm:…</c>.
    /// </summary>
    public static readonly CollectorRegistry VllmRegistry = Prometheus.Metrics.NewCustomRegistry();
    private static readonly MetricFactory Vllm = Prometheus.Metrics.WithCustomRegistry(VllmRegistry);

    private static readonly Gauge VllmRunning = Vllm.CreateGauge("vllm_num_requests_running",
        "Requests running in the engine (vLLM's name)", "model_name", "silo");
    private static readonly Gauge VllmWaiting = Vllm.CreateGauge("vllm_num_requests_waiting",
        "Requests waiting for the engine (vLLM's name)", "model_name", "silo");
    private static readonly Gauge VllmKvUsage = Vllm.CreateGauge("vllm_kv_cache_usage_perc",
        "Fraction of the KV cache's blocks in use, 0 to 1 (vLLM's name)", "model_name", "silo");
    private static readonly Histogram VllmTimeToFirstToken = Vllm.CreateHistogram("vllm_time_to_first_token_seconds",
        "From sending a generation to its first token (vLLM's name)", new HistogramConfiguration { LabelNames = ["model_name"], Buckets = LatencyBuckets });
    private static readonly Histogram VllmInterTokenLatency = Vllm.CreateHistogram("vllm_inter_token_latency_seconds",
        "Between consecutive tokens of a generation (vLLM's name)", new HistogramConfiguration { LabelNames = ["model_name"], Buckets = LatencyBuckets });
    private static readonly Counter VllmPromptTokens = Vllm.CreateCounter("vllm_prompt_tokens_total",
        "Prompt tokens (vLLM's name)", "model_name");
    private static readonly Counter VllmGenerationTokens = Vllm.CreateCounter("vllm_generation_tokens_total",
        "Generated tokens (vLLM's name)", "model_name");

    /// <summary>A token reached the client <paramref name="seconds"/> after the request (the first) or the previous token.</summary>
    public static void ObserveToken(string model, bool first, double seconds)
    {
        (first ? TimeToFirstToken : InterTokenLatency).WithLabels(model).Observe(seconds);
        (first ? VllmTimeToFirstToken : VllmInterTokenLatency).WithLabels(model).Observe(seconds);
    }

    /// <summary><paramref name="count"/> tokens of <paramref name="kind"/> ("prompt" or "completion") served to a tenant.</summary>
    public static void AddTokens(string model, string tenant, string kind, long count)
    {
        Tokens.WithLabels(model, kind).Inc(count);
        TenantTokens.WithLabels(model, tenant, kind).Inc(count);
        (kind == "prompt" ? VllmPromptTokens : VllmGenerationTokens).WithLabels(model).Inc(count);
    }

    /// <summary>A model worker's queue, running sequences and KV blocks, as it last reported them.</summary>
    public static void SetWorker(string model, string silo, ModelStatus status)
    {
        Sequences.WithLabels(model, silo, "running").Set(status.Running);
        Sequences.WithLabels(model, silo, "waiting").Set(status.Waiting);
        KvBlocks.WithLabels(model, silo, "used").Set(status.KvBlocksUsed);
        KvBlocks.WithLabels(model, silo, "free").Set(status.KvBlocksFree - status.KvBlocksCached);
        KvBlocks.WithLabels(model, silo, "cached").Set(status.KvBlocksCached);
        ModelLoaded.WithLabels(model, silo).Set(status.Loaded ? 1 : 0);
        VllmRunning.WithLabels(model, silo).Set(status.Running);
        VllmWaiting.WithLabels(model, silo).Set(status.Waiting);
        long blocks = status.KvBlocksUsed + status.KvBlocksFree;
        VllmKvUsage.WithLabels(model, silo).Set(blocks == 0 ? 0 : (double)status.KvBlocksUsed / blocks);
    }

    private static readonly string[] States = [ModelStates.Loaded, ModelStates.Loading, ModelStates.Available, ModelStates.Failed];

    /// <summary>A model's lifecycle: its cluster-wide counters (as the catalog sums them), its state and each replica's memory.</summary>
    public static void SetModel(ModelInfo model)
    {
        string name = model.Definition.Name;
        ModelLoads.WithLabels(name).IncTo(model.Counters.Loads);
        ModelReloads.WithLabels(name).IncTo(model.Counters.Reloads);
        ModelEvictions.WithLabels(name).IncTo(model.Counters.Evictions);
        ModelLoadFailures.WithLabels(name).IncTo(model.Counters.Failures);
        foreach (var state in States) ModelState.WithLabels(name, state).Set(state == model.State ? 1 : 0);
        foreach (var silo in model.Replicas.GroupBy(r => r.Silo)) ModelMemory.WithLabels(name, silo.Key).Set(silo.Sum(r => r.Bytes));
    }

    /// <summary>A model the catalog no longer lists, or a replica that went: its series go.</summary>
    public static void RemoveModel(string model)
    {
        foreach (var state in States) ModelState.RemoveLabelled(model, state);
    }

    public static void RemoveReplica(string model, string silo) => ModelMemory.RemoveLabelled(model, silo);

    /// <summary>A worker that is gone: its series go.</summary>
    public static void RemoveWorker(string model, string silo)
    {
        foreach (var state in new[] { "running", "waiting" }) Sequences.RemoveLabelled(model, silo, state);
        foreach (var state in new[] { "used", "free", "cached" }) KvBlocks.RemoveLabelled(model, silo, state);
        foreach (var gauge in new[] { ModelLoaded, VllmRunning, VllmWaiting, VllmKvUsage }) gauge.RemoveLabelled(model, silo);
    }
}
