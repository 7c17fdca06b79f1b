using System.Diagnostics.Metrics;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>The engine's instruments report through System.Diagnostics.Metrics, tagged with the model.</summary>
[Collection(GoldenCollection.Name)]
public sealed class EngineMetricsTests(GoldenData golden)
{
    [Fact]
    public async Task Tokens_latencies_and_kv_blocks_are_measured_per_model()
    {
        const string model = "metrics-test-model";
        var seen = new Dictionary<string, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Gpt2Orleans.Engine") l.EnableMeasurementEvents(instrument);
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var tag in tags)
                if (tag.Key == "model" && (string?)tag.Value == model)
                    lock (seen) seen[instrument.Name] = seen.GetValueOrDefault(instrument.Name) + value;
        }
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<int>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        using var engine = new GenerationEngine(golden.Lm(), Gpt2Tokenizer.Default, new EngineOptions { ModelName = model, KvBlocks = 64, BlockSize = 4 });
        var prompt = Gpt2Tokenizer.Default.Encode("The meaning of life is");
        await foreach (var _ in engine.SubmitAsync(new EngineRequest("t", prompt, new GenerationConfig { MaxNewTokens = 5, EosTokenIds = [] }))) { }
        listener.RecordObservableInstruments();

        Assert.Equal(prompt.Count, seen["gpt2o.engine.tokens.prompt"]);
        Assert.Equal(5, seen["gpt2o.engine.tokens.generated"]);
        Assert.True(seen["gpt2o.engine.time_to_first_token"] > 0);
        Assert.True(seen["gpt2o.engine.inter_token_latency"] > 0);
        Assert.Equal(64, seen["gpt2o.engine.kv.blocks"]); // used + free + cached = the whole pool
        Assert.True(seen.ContainsKey("gpt2o.engine.sequences.running") && seen.ContainsKey("gpt2o.engine.prefix_cache.hit_rate"));
    }
}
