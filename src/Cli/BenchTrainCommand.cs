using System.CommandLine;
using System.Diagnostics;
using Gpt2Orleans.Cli.Benchmark;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using Gpt2Orleans.Inference.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o bench-train</c>: training tokens/s (forward, backward, clipping and the AdamW step) of GPT-2 small and of the
/// README's fortunes model, in fp32 and bf16 mixed precision, each next to the compute bound measured in the same
/// run: 6 × parameters FLOPs per token (2 forward, 4 backward; the tied embedding counted once, as the LM head's
/// product) ÷ this machine's matmul rate in that dtype (or in fp32, where that is faster: a CPU without bf16 units).
/// </summary>
public static class BenchTrainCommand
{
    /// <summary>The model the README trains on the fortunes corpus (its config overrides).</summary>
    public const string FortunesConfig = "n_layer=4,n_embd=128,n_head=4,n_positions=128,resid_pdrop=0,embd_pdrop=0,attn_pdrop=0";

    private static readonly Option<string[]> DTypes = new("--dtypes") { Description = "float32 and/or bfloat16 (mixed precision)", DefaultValueFactory = _ => ["float32", "bfloat16"], AllowMultipleArgumentsPerToken = true };
    private static readonly Option<string[]> Models = new("--models") { Description = "gpt2 (small, HF's default config) and/or fortunes", DefaultValueFactory = _ => ["gpt2", "fortunes"], AllowMultipleArgumentsPerToken = true };
    private static readonly Option<int> BatchSize = new("--per-device-train-batch-size") { DefaultValueFactory = _ => 1 };
    private static readonly Option<int> BlockSize = new("--block-size") { DefaultValueFactory = _ => 128 };
    private static readonly Option<int> Steps = new("--steps") { Description = "Timed steps after one warm-up step (libtorch's CPU bf16 products are slow: keep it small)", DefaultValueFactory = _ => 2 };

    public sealed record Row(string Model, string DType, long Parameters, double TokensPerSecond, double BoundTokensPerSecond, double FractionOfBound);

    public static Command Create()
    {
        var command = new Command("bench-train", "Training tokens/s of GPT-2 small and the fortunes model against this machine's compute bound");
        foreach (var option in new Option[] { DTypes, Models, BatchSize, BlockSize, Steps, CommonOptions.Device, CommonOptions.Json }) command.Add(option);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        bool json = parse.GetValue(CommonOptions.Json);
        var dtypes = parse.GetValue(DTypes)!.Select(DeviceSpec.ParseDType).ToList();
        if (dtypes.Any(d => d is not (ScalarType.Float32 or ScalarType.BFloat16))) throw new ArgumentException("--dtypes: training runs in float32 or bfloat16", "dtypes");
        var models = parse.GetValue(Models)!.Select(m => m switch
        {
            "gpt2" => (Name: m, Config: Gpt2Config.Default),
            "fortunes" => (Name: m, Config: Gpt2Config.FromOverrides(FortunesConfig)),
            _ => throw new ArgumentException($"--models: '{m}' is not gpt2 or fortunes", "models"),
        }).ToList();
        int batch = parse.GetValue(BatchSize), block = parse.GetValue(BlockSize), steps = parse.GetValue(Steps);
        if (batch < 1 || block < 2 || steps < 1) throw new ArgumentException("--per-device-train-batch-size and --steps must be at least 1, --block-size at least 2");
        if (!json) Console.Error.WriteLine("measuring the machine (matmul rate)…");
        Gpt2Orleans.Inference.Native.TorchNativeLoader.EnsureLoaded();
        var bounds = MachineBounds.Measure([ScalarType.Float32, .. dtypes], repeats: 10);

        var task = new CausalLmTask();
        var rows = new List<Row>();
        foreach (var (name, config) in models)
        {
            if (block > config.NPositions) throw new ArgumentException($"--block-size {block} is beyond {name}'s n_positions ({config.NPositions})", "block-size");
            var random = new Random(1);
            var examples = Enumerable.Range(0, batch * (steps + 1))
                .Select(_ => Enumerable.Range(0, block).Select(_ => (long)random.Next(config.VocabSize)).ToArray()).Select(ids => new TrainingExample(ids, ids)).ToList();
            foreach (var dtype in dtypes)
            {
                if (!json) Console.Error.WriteLine($"{name}, {DeviceSpec.DTypeName(dtype)}: {steps + 1} steps of {batch}×{block} tokens…");
                using var model = task.CreateRandom(config, seed: 1, new ModelLoadOptions { Device = parse.GetValue(CommonOptions.Device)! });
                long parameters = model.named_parameters().Where(p => p.name != "transformer.wpe.weight").Sum(p => p.parameter.numel()); // a position lookup costs no product
                var stamps = new List<double>();
                var clock = Stopwatch.StartNew();
                new Trainer(task, model, Gpt2Tokenizer.Default, new TrainingArguments
                {
                    MaxSteps = steps + 1, PerDeviceTrainBatchSize = batch, LearningRate = 1e-4, Bf16 = dtype == ScalarType.BFloat16, LoggingSteps = steps + 1,
                }).Train(examples, events: new TrainerEvents { OnStep = _ => stamps.Add(clock.Elapsed.TotalSeconds) });
                double tokensPerSecond = (double)batch * block * steps / (stamps[^1] - stamps[0]);
                double bound = bounds.MatmulGflopsFor(dtype) * 1e9 / (6.0 * parameters);
                rows.Add(new Row(name, DeviceSpec.DTypeName(dtype), parameters, tokensPerSecond, bound, tokensPerSecond / bound));
            }
        }
        if (json)
        {
            JsonOutput.Write(new { matmul_gflops = bounds.MatmulGflops.ToDictionary(p => DeviceSpec.DTypeName(p.Key), p => p.Value), rows });
            return 0;
        }
        var table = new Table().AddColumns("model", "dtype", "parameters", "training tokens/s", "compute bound", "fraction of bound");
        foreach (var r in rows)
            table.AddRow(r.Model, r.DType, $"{r.Parameters / 1e6:F1}M", $"{r.TokensPerSecond:N1}", $"{r.BoundTokensPerSecond:N0}", $"{r.FractionOfBound:P1}");
        AnsiConsole.Write(table);
        AnsiConsole.WriteLine($"matmul (2048² product) {string.Join(", ", bounds.MatmulGflops.Select(p => $"{DeviceSpec.DTypeName(p.Key)} {p.Value:F1} GFLOP/s"))}; " +
                              "bound = the faster matmul rate ÷ (6 × parameters) tokens/s; bf16 is mixed precision (bf16 forward and backward, fp32 master weights)");
        return 0;
    }
}
