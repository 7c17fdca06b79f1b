using Gpt2Orleans.Inference.Engine;
using System.CommandLine;
using System.Diagnostics;
using Gpt2Orleans.Cli.Benchmark;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o bench</c>: batch-1 decode, long-prompt prefill and load time of GPT-2 small (HF's default config) per
/// dtype (and quantization), each printed next to the bound this machine measured in the same run: weight bytes ÷
/// memory bandwidth for decode (every step reads every weight once: for quantized weights their levels and scales),
/// FLOPs ÷ matmul rate for prefill.
/// </summary>
public static class BenchCommand
{
    private static readonly Option<string[]> DTypes = new("--dtypes") { Description = "dtypes to measure", DefaultValueFactory = _ => ["float32", "bfloat16"], AllowMultipleArgumentsPerToken = true };
    private static readonly Option<int> PromptTokens = new("--prompt-tokens") { DefaultValueFactory = _ => 32 };
    private static readonly Option<int> NewTokens = new("--new-tokens") { DefaultValueFactory = _ => 128 };
    private static readonly Option<int> PrefillTokens = new("--prefill-tokens") { DefaultValueFactory = _ => 512 };
    private static readonly Option<string[]> Quantizations = new("--quantizations")
    {
        Description = "weights to measure each dtype with: none, int8, int4, nf4 (groups of --group-size)", DefaultValueFactory = _ => ["none"], AllowMultipleArgumentsPerToken = true,
    };
    private static readonly Option<int> Repeats = new("--repeats") { Description = "runs per measurement (the median is reported)", DefaultValueFactory = _ => 3 };

    public sealed record Row(string DType, string Measurement, double Value, string Unit, double? Bound, double? FractionOfBound);

    public static Command Create()
    {
        var command = new Command("bench", "Decode, prefill and load time of GPT-2 small against this machine's measured bounds");
        CommonOptions.AddTo(command);
        foreach (var option in new Option[] { DTypes, Quantizations, PromptTokens, NewTokens, PrefillTokens, Repeats }) command.Add(option);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        bool json = parse.GetValue(CommonOptions.Json);
        var dtypes = parse.GetValue(DTypes)!.Select(DeviceSpec.ParseDType).ToArray();
        int repeats = Math.Max(1, parse.GetValue(Repeats));
        var quantizations = (parse.GetValue(CommonOptions.Quantize) is not null ? [parse.GetValue(CommonOptions.Quantize)!] : parse.GetValue(Quantizations)!)
            .Select(q => Inference.Quantization.QuantizationConfig.Parse(q, parse.GetValue(CommonOptions.GroupSize))).Distinct().ToArray();
        string device = parse.GetValue(CommonOptions.Device)!;
        Log(json, "measuring the machine (memory bandwidth, matmul rate)…");
        Gpt2Orleans.Inference.Native.TorchNativeLoader.EnsureLoaded();
        var probe = new BandwidthProbe();
        var bounds = MachineBounds.Measure(probe, [ScalarType.Float32, .. dtypes], repeats: 10);

        string folder = parse.GetValue(CommonOptions.Model) ?? Path.Combine(Path.GetTempPath(), $"gpt2o-bench-{Environment.ProcessId}");
        bool temporary = parse.GetValue(CommonOptions.Model) is null;
        if (temporary)
        {
            Log(json, $"writing the default model to {folder}…");
            using var seed = DefaultModel.Create();
            seed.SavePretrained(folder);
        }
        var rows = new List<Row>();
        try
        {
            foreach (var dtype in dtypes)
                foreach (var quantization in quantizations)
                {
                    string name = quantization is null ? Name(dtype) : $"{Name(dtype)} + {quantization.Name}";
                    Log(json, $"{name}: loading, decoding, prefilling…");
                    var options = new ModelLoadOptions { Device = device, DType = dtype, Quantization = quantization };
                    double load = Median(repeats, () => Time(() => Gpt2LMHeadModel.FromPretrained(folder, options).Dispose()));
                    using var model = Gpt2LMHeadModel.FromPretrained(folder, options);
                    long weightBytes = model.WeightBytes; // levels and scales for quantized weights
                    // Warm-up, untimed, as bench-engine's: until .NET's tiered JIT has promoted the per-step code, a decode runs
                    // partly as tier-0 code (measured: the first precision a process measured decoded int4 at 165–204 tok/s
                    // against 239–246 for the same weights measured after it). At least 128 tokens, whatever --new-tokens says:
                    // after a 32-token warm-up the first precision still decoded float32 at 38 tok/s against 44–48 for the
                    // same weights after it, and at 55 against 51–55 after a 128-token one (Zen 3, one run each).
                    int promptTokens = parse.GetValue(PromptTokens);
                    DecodeMsPerToken(model, promptTokens, Math.Max(1, Math.Min(Math.Max(128, parse.GetValue(NewTokens)), (int)model.Config.NPositions - promptTokens)));
                    // Each decode run between two bandwidth probes (BracketedDecode), judged also by the bound of its own moment.
                    var decodes = BracketedDecode.Measure(probe, weightBytes, repeats, () => 1000 / DecodeMsPerToken(model, promptTokens, parse.GetValue(NewTokens)));
                    double decodeMs = 1000 / MedianOf(decodes.Select(d => d.TokensPerSecond));
                    int prefillTokens = parse.GetValue(PrefillTokens);
                    double prefill = Median(repeats, () => Time(() => Prefill(model, prefillTokens)));

                    double decodeBoundMs = weightBytes / (bounds.BandwidthGBps * 1e9) * 1e3;
                    // Quantized products multiply in float32 (the integer kernel or dequantized slices): fp32's rate bounds them.
                    double prefillBound = PrefillFlops(model.Config, prefillTokens) / ((quantization is null ? bounds.MatmulGflopsFor(dtype) : bounds.MatmulGflops[ScalarType.Float32]) * 1e9);
                    rows.Add(new Row(name, "decode, batch 1", decodeMs, "ms/token", decodeBoundMs, decodeBoundMs / decodeMs));
                    rows.Add(new Row(name, "decode, batch 1", 1000 / decodeMs, "tokens/s", 1000 / decodeBoundMs, decodeBoundMs / decodeMs));
                    rows.Add(new Row(name, "decode, batch 1, bound probed around each run", 1000 / decodeMs, "tokens/s",
                        MedianOf(decodes.Select(d => d.BandwidthGBps * 1e9 / weightBytes)), MedianOf(decodes.Select(d => d.FractionOfBound))));
                    rows.Add(new Row(name, $"prefill {prefillTokens} tokens", prefill, "s", prefillBound, prefillBound / prefill));
                    rows.Add(new Row(name, quantization is null ? "model load" : "model load, quantizing", load, "s", null, null));
                    if (quantization is not null)
                    {
                        // A checkpoint written by `gpt2o quantize` loads its levels and scales as they are.
                        string saved = Path.Combine(Path.GetTempPath(), $"gpt2o-bench-{Environment.ProcessId}-{quantization.Name}");
                        model.SavePretrained(saved);
                        try
                        {
                            double preQuantized = Median(repeats, () => Time(() => Gpt2LMHeadModel.FromPretrained(saved, options with { Quantization = null }).Dispose()));
                            rows.Add(new Row(name, "model load, pre-quantized", preQuantized, "s", null, null));
                        }
                        finally { Directory.Delete(saved, recursive: true); }
                    }
                }
        }
        finally
        {
            if (temporary) Directory.Delete(folder, recursive: true);
        }

        if (json)
        {
            JsonOutput.Write(new { triad_gbps = bounds.TriadGBps, read_gbps = bounds.ReadGBps, matmul_gflops = bounds.MatmulGflops.ToDictionary(p => Name(p.Key), p => p.Value), rows });
            return 0;
        }
        var table = new Table().AddColumns("dtype", "measurement", "value", "machine bound", "fraction of bound");
        foreach (var r in rows)
            table.AddRow(r.DType, r.Measurement, $"{r.Value:0.###} {r.Unit}", r.Bound is { } bound ? $"{bound:0.###} {r.Unit}" : "—",
                r.FractionOfBound is { } fraction ? $"{fraction:P0}" : "—");
        AnsiConsole.Write(table);
        AnsiConsole.WriteLine($"machine: {Environment.ProcessorCount} cores, memory triad {bounds.TriadGBps:F1} GB/s, read {bounds.ReadGBps:F1} GB/s, matmul " +
            string.Join(", ", bounds.MatmulGflops.Select(p => $"{Name(p.Key)} {p.Value:F0} GFLOP/s")) + $"; torch threads {torch.get_num_threads()}");
        AnsiConsole.WriteLine("decode bound = weight bytes ÷ the higher of the two bandwidths (probed at the start, or around each run: the medians of the runs); prefill bound = FLOPs (projections + causal attention) ÷ matmul rate");
        return 0;
    }

    private static double DecodeMsPerToken(Gpt2LMHeadModel model, int promptTokens, int newTokens)
    {
        var prompt = Enumerable.Range(0, promptTokens).Select(i => 1000 + 37 * i % 40000).ToArray();
        var stamps = new List<double>();
        var config = new GenerationConfig { MaxNewTokens = newTokens, EosTokenIds = [] };
        using var engine = LocalEngine.For(model, Gpt2Tokenizer.Default, [prompt], config);
        var watch = Stopwatch.StartNew();
        engine.GenerateAsync([prompt], config, onEvent: (_, _) => stamps.Add(watch.Elapsed.TotalMilliseconds)).GetAwaiter().GetResult();
        return (stamps[^1] - stamps[0]) / (stamps.Count - 1); // steps after the first token: decode only
    }

    private static void Prefill(Gpt2LMHeadModel model, int tokens)
    {
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(Enumerable.Range(0, tokens).Select(i => (long)(1000 + 37 * i % 40000)).ToArray(), [1, tokens]);
        using var output = model.forward(ids, lastPositionOnly: true);
    }

    /// <summary>2 FLOPs per multiply-add: the four projections per layer, causal attention (QKᵀ and AV, lower triangle), one LM-head row.</summary>
    private static double PrefillFlops(Gpt2Config c, int t) =>
        2.0 * t * c.NLayer * (4.0 * c.NEmbd * c.NEmbd + 2.0 * c.NEmbd * c.InnerDim)
        + c.NLayer * 2.0 * 2.0 * c.NEmbd * t * (t + 1) / 2
        + 2.0 * c.NEmbd * c.VocabSize;

    private static double Time(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalSeconds;
    }

    private static double Median(int repeats, Func<double> measure) => MedianOf(Enumerable.Range(0, repeats).Select(_ => measure()));

    private static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => "float32",
    };

    private static void Log(bool json, string line)
    {
        if (!json) Console.Error.WriteLine(line);
    }
}
