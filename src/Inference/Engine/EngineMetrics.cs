using System.Diagnostics.Metrics;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// The engine's instruments on <see cref="System.Diagnostics.Metrics"/> (meter "Gpt2Orleans.Engine"), tagged with
/// the model, so OpenTelemetry or Prometheus can export them: running and waiting sequences, KV blocks, prefix-cache
/// hit rate, tokens in and out, time to first token and inter-token latency, preemptions and rejections.
/// </summary>
internal sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "Gpt2Orleans.Engine";

    private readonly Meter _meter = new(MeterName);
    private readonly KeyValuePair<string, object?> _model;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _generatedTokens;
    private readonly Counter<long> _preemptions;
    private readonly Counter<long> _rejections;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _interTokenLatency;

    public EngineMetrics(string model, Func<EngineStats> stats)
    {
        _model = new("model", model);
        var tag = _model;
        _meter.CreateObservableGauge("gpt2o.engine.sequences.running", () => new Measurement<int>(stats().Running, tag));
        _meter.CreateObservableGauge("gpt2o.engine.sequences.waiting", () => new Measurement<int>(stats().Waiting, tag));
        _meter.CreateObservableGauge("gpt2o.engine.kv.blocks", () =>
        {
            var s = stats();
            return new[]
            {
                new Measurement<int>(s.BlocksUsed, tag, new("state", "used")),
                new Measurement<int>(s.BlocksFree - s.BlocksCached, tag, new("state", "free")),
                new Measurement<int>(s.BlocksCached, tag, new("state", "cached")),
            };
        });
        _meter.CreateObservableGauge("gpt2o.engine.prefix_cache.hit_rate", () =>
        {
            var s = stats();
            return new Measurement<double>(s.PrefixQueries == 0 ? 0 : (double)s.PrefixHits / s.PrefixQueries, tag);
        });
        _promptTokens = _meter.CreateCounter<long>("gpt2o.engine.tokens.prompt", "{token}", "Prompt tokens computed (prefill)");
        _generatedTokens = _meter.CreateCounter<long>("gpt2o.engine.tokens.generated", "{token}", "Tokens generated");
        _preemptions = _meter.CreateCounter<long>("gpt2o.engine.preemptions", "{sequence}", "Sequences preempted for memory");
        _rejections = _meter.CreateCounter<long>("gpt2o.engine.rejections", "{request}", "Requests rejected because the queue was full");
        _timeToFirstToken = _meter.CreateHistogram<double>("gpt2o.engine.time_to_first_token", "s", "From submission to the first token");
        _interTokenLatency = _meter.CreateHistogram<double>("gpt2o.engine.inter_token_latency", "s", "Between consecutive tokens of a sequence");
    }

    public void PromptTokens(long count) => _promptTokens.Add(count, _model);
    public void GeneratedToken() => _generatedTokens.Add(1, _model);
    public void Preempted(long count) => _preemptions.Add(count, _model);
    public void Rejected() => _rejections.Add(1, _model);
    public void TimeToFirstToken(TimeSpan elapsed) => _timeToFirstToken.Record(elapsed.TotalSeconds, _model);
    public void InterTokenLatency(TimeSpan elapsed) => _interTokenLatency.Record(elapsed.TotalSeconds, _model);

    public void Dispose() => _meter.Dispose();
}
