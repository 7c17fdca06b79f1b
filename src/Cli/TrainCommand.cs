using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using Gpt2Orleans.Inference.Training;
using Spectre.Console;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o train</c>: HF's Trainer from the command line (run_clm / run_glue / run_ner in one), with
/// <c>TrainingArguments</c> in kebab case. Everything is validated (files read and encoded, config, output folder)
/// before the first step, so bad input writes nothing; the model is saved in HF's <c>save_pretrained</c> layout.
/// </summary>
public static class TrainCommand
{
    private static readonly Option<string> Task = new("--task") { Description = "causal-lm (default), sequence-classification or token-classification", DefaultValueFactory = _ => "causal-lm" };
    private static readonly Option<string?> Config = new("--config") { Description = "Train from scratch: GPT2Config key=value pairs on HF's defaults, e.g. n_layer=4,n_embd=256,n_head=4,n_positions=256" };
    private static readonly Option<string> TrainFile = new("--train-file") { Description = "JSON Lines: {\"text\"} (LM), {\"text\",\"label\"} (sequence), {\"tokens\",\"labels\"} (token); or .txt, one document", Required = true };
    private static readonly Option<string?> ValidationFile = new("--validation-file") { Description = "Held-out examples in the training file's format" };
    private static readonly Option<double?> ValidationSplit = new("--validation-split") { Description = "Hold out this fraction of the training documents instead (seeded), e.g. 0.05" };
    private static readonly Option<string?> Labels = new("--labels") { Description = "Classification label names, comma-separated, in index order (default: the checkpoint's, else the training file's, sorted)" };
    private static readonly Option<int?> BlockSize = new("--block-size") { Description = "Tokens per training block (LM) or per example (classification, truncated); default min(n_positions, 1024)" };
    private static readonly Option<string> OutputDir = new("--output-dir") { Description = "Where the model, checkpoints and trainer_log.jsonl go", Required = true };
    private static readonly Option<bool> OverwriteOutputDir = new("--overwrite-output-dir") { Description = "Write into a non-empty output folder" };
    private static readonly Option<string?> ResumeFromCheckpoint = new("--resume-from-checkpoint") { Description = "A checkpoint-N folder to continue from (model, optimizer, schedule and RNG state)" };
    private static readonly Option<double?> NumTrainEpochs = new("--num-train-epochs") { Description = "Epochs (default 3)" };
    private static readonly Option<int?> MaxSteps = new("--max-steps") { Description = "Optimizer steps; overrides --num-train-epochs" };
    private static readonly Option<int?> PerDeviceTrainBatchSize = new("--per-device-train-batch-size") { Description = "Examples per micro-batch (default 8)" };
    private static readonly Option<int?> PerDeviceEvalBatchSize = new("--per-device-eval-batch-size") { Description = "Examples per evaluation batch (default 8)" };
    private static readonly Option<int?> GradientAccumulationSteps = new("--gradient-accumulation-steps") { Description = "Micro-batches per optimizer step (default 1)" };
    private static readonly Option<double?> LearningRate = new("--learning-rate") { Description = "Peak learning rate (default 5e-5)" };
    private static readonly Option<double?> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay, not on biases and LayerNorm (default 0)" };
    private static readonly Option<int?> WarmupSteps = new("--warmup-steps");
    private static readonly Option<double?> WarmupRatio = new("--warmup-ratio");
    private static readonly Option<string?> LrSchedulerType = new("--lr-scheduler-type") { Description = "linear (default), cosine or constant" };
    private static readonly Option<double?> MaxGradNorm = new("--max-grad-norm") { Description = "Gradient clipping (default 1.0; 0 off)" };
    private static readonly Option<long?> Seed = new("--seed") { Description = "Seeds initialisation, data order, split and dropout (default 42)" };
    private static readonly Option<int?> EvalSteps = new("--eval-steps") { Description = "Evaluate every N steps (default: at the end only)" };
    private static readonly Option<int?> SaveSteps = new("--save-steps") { Description = "Write checkpoint-N/ every N steps (default: none)" };
    private static readonly Option<int?> SaveTotalLimit = new("--save-total-limit") { Description = "Keep at most N checkpoints" };
    private static readonly Option<int?> LoggingSteps = new("--logging-steps") { Description = "Log the mean loss every N steps (default 500)" };
    private static readonly Option<bool> Bf16 = new("--bf16") { Description = "bf16 mixed precision (bf16 forward and backward, fp32 master weights)" };

    public static Command Create()
    {
        var command = new Command("train", "Train or fine-tune a GPT-2 (causal LM, sequence or token classification) as HF's Trainer does");
        foreach (var option in new Option[] { CommonOptions.Model, CommonOptions.Device, CommonOptions.Json, Task, Config, TrainFile, ValidationFile, ValidationSplit,
                     Labels, BlockSize, OutputDir, OverwriteOutputDir, ResumeFromCheckpoint, NumTrainEpochs, MaxSteps, PerDeviceTrainBatchSize,
                     PerDeviceEvalBatchSize, GradientAccumulationSteps, LearningRate, WeightDecay, WarmupSteps, WarmupRatio, LrSchedulerType,
                     MaxGradNorm, Seed, EvalSteps, SaveSteps, SaveTotalLimit, LoggingSteps, Bf16 })
            command.Add(option);
        command.SetAction(Run);
        return command;
    }

    private static TrainingArguments Arguments(ParseResult p)
    {
        var d = new TrainingArguments();
        return new TrainingArguments
        {
            NumTrainEpochs = p.GetValue(NumTrainEpochs) ?? d.NumTrainEpochs, MaxSteps = p.GetValue(MaxSteps) ?? d.MaxSteps,
            PerDeviceTrainBatchSize = p.GetValue(PerDeviceTrainBatchSize) ?? d.PerDeviceTrainBatchSize,
            PerDeviceEvalBatchSize = p.GetValue(PerDeviceEvalBatchSize) ?? d.PerDeviceEvalBatchSize,
            GradientAccumulationSteps = p.GetValue(GradientAccumulationSteps) ?? d.GradientAccumulationSteps,
            LearningRate = p.GetValue(LearningRate) ?? d.LearningRate, WeightDecay = p.GetValue(WeightDecay) ?? d.WeightDecay,
            WarmupSteps = p.GetValue(WarmupSteps) ?? d.WarmupSteps, WarmupRatio = p.GetValue(WarmupRatio) ?? d.WarmupRatio,
            LrSchedulerType = p.GetValue(LrSchedulerType) ?? d.LrSchedulerType, MaxGradNorm = p.GetValue(MaxGradNorm) ?? d.MaxGradNorm,
            Seed = p.GetValue(Seed) ?? d.Seed, EvalSteps = p.GetValue(EvalSteps) ?? d.EvalSteps, SaveSteps = p.GetValue(SaveSteps) ?? d.SaveSteps,
            SaveTotalLimit = p.GetValue(SaveTotalLimit), LoggingSteps = p.GetValue(LoggingSteps) ?? d.LoggingSteps, Bf16 = p.GetValue(Bf16),
        };
    }

    private static int Run(ParseResult parse)
    {
        var task = TrainingTask.Parse(parse.GetValue(Task)!);
        var args = Arguments(parse);
        args.Validate();
        string output = parse.GetValue(OutputDir)!;
        string? resume = parse.GetValue(ResumeFromCheckpoint);
        CheckOutputDir(output, parse.GetValue(OverwriteOutputDir) || resume is not null);
        bool json = parse.GetValue(CommonOptions.Json);

        // Where the model comes from: a checkpoint to resume, a folder or hub id to fine-tune, or a config to train from scratch.
        string? overrides = parse.GetValue(Config), spec = parse.GetValue(CommonOptions.Model);
        if (overrides is not null && spec is not null)
            throw new ArgumentException("--config trains from scratch: give it without --model", "config");
        if (resume is not null && (overrides ?? spec) is not null && !json)
            Console.Error.WriteLine($"[resuming: the model, its config and tokenizer come from {resume}]");
        if (overrides is null && spec is null && resume is null)
            throw new ArgumentException("say what to train: --model DIR|hub-id (fine-tune) or --config key=value,… (from scratch)", "model");
        string? folder = resume ?? (spec is null ? null : ModelLoader.ResolveFolder(spec, json));
        var config = folder is null ? Gpt2Config.FromOverrides(overrides!) : Gpt2Config.FromFile(Path.Combine(folder, "config.json"));
        var tokenizer = folder is null ? Gpt2Tokenizer.Default : Gpt2Tokenizer.FromDirectory(folder);
        if (tokenizer.VocabSize > config.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {config.VocabSize}", "config");

        // The data, read and encoded in full before anything is written.
        bool sameHead = config.Architectures.Contains(task.Architecture);
        var given = parse.GetValue(Labels) is { } names ? new LabelSet(names.Split(',', StringSplitOptions.TrimEntries))
            : sameHead && task is not CausalLmTask ? LabelSet.Of(config) : null;
        var data = task.LoadData(new DataOptions
        {
            TrainFile = parse.GetValue(TrainFile)!, ValidationFile = parse.GetValue(ValidationFile), ValidationSplit = parse.GetValue(ValidationSplit),
            Seed = args.Seed, Tokenizer = tokenizer, BlockSize = parse.GetValue(BlockSize) ?? Math.Min(config.NPositions, 1024),
            NPositions = config.NPositions, Labels = given,
        });
        Gpt2Config Configure(Gpt2Config c) => data.Labels is null ? c
            : c with { Id2Label = data.Labels.Id2Label, PadTokenId = c.PadTokenId ?? (task is SequenceClassificationTask ? tokenizer.EndOfTextId : null) };
        var options = new ModelLoadOptions { Device = parse.GetValue(CommonOptions.Device)!, Log = line => Console.Error.WriteLine(line) };
        var run = args.ForDataset(data.Train.Count);

        using var model = folder is null ? task.CreateRandom(Configure(config), args.Seed, options) : task.Load(folder, options, Configure);
        Directory.CreateDirectory(output);
        using var log = new StreamWriter(Path.Combine(output, "trainer_log.jsonl"), append: resume is not null);
        void Record(JsonObject line)
        {
            string text = line.ToJsonString();
            log.WriteLine(text);
            log.Flush();
            if (json) Console.Out.WriteLine(text);
        }
        var trainer = new Trainer(task, model, tokenizer, args, output);
        TrainingResult result;
        var events = new TrainerEvents
        {
            OnLog = l => Record(l.ToJson()),
            OnEvaluate = e => Record(e.ToJson()),
        };
        if (!json) Console.Error.WriteLine($"[{task.Name}: {Describe(model)}; {data.Train.Count} training and {data.Validation?.Count ?? 0} validation examples; {run.MaxSteps} steps]");
        if (json) result = trainer.Train(data.Train, data.Validation, resume, events);
        else
        {
            var console = CliConsole.Error;
            result = console.Progress().AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var bar = context.AddTask("training", maxValue: run.MaxSteps);
                    double tokensPerSecond = 0, loss = double.NaN;
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    long tokens = 0;
                    return trainer.Train(data.Train, data.Validation, resume, events with
                    {
                        OnStep = s =>
                        {
                            tokens += s.Tokens;
                            tokensPerSecond = tokens / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                            loss = double.IsNaN(loss) ? s.Loss : 0.9 * loss + 0.1 * s.Loss; // smoothed for reading
                            bar.Description = $"step {s.Step}/{run.MaxSteps}  loss {loss:F3}  lr {s.LearningRate:0.##e+0}  {tokensPerSecond:N0} tok/s";
                            bar.Value = s.Step;
                        },
                    });
                });
        }
        SaveFinal(task, model, tokenizer, output);
        var summary = new JsonObject
        {
            ["global_step"] = result.GlobalStep, ["train_loss"] = double.IsFinite(result.TrainLoss) ? result.TrainLoss : null,
            ["train_runtime"] = Math.Round(result.Seconds, 2), ["train_tokens_per_second"] = Math.Round(result.Tokens / Math.Max(1e-9, result.Seconds), 1),
            ["output_dir"] = output,
        };
        if (result.Evaluation is { } evaluation) LogLine.AddTo(summary, evaluation);
        File.WriteAllText(Path.Combine(output, "all_results.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (json) Console.Out.WriteLine(summary.ToJsonString());
        else
        {
            Console.WriteLine($"trained {result.GlobalStep} steps in {result.Seconds:F1} s: train loss {result.TrainLoss:F4}, {result.Tokens / Math.Max(1e-9, result.Seconds):N0} tokens/s");
            if (result.Evaluation is { } e) Console.WriteLine(string.Join("  ", e.Select(m => $"{m.Key} {m.Value:F4}")));
            Console.WriteLine($"saved to {output}");
        }
        return 0;
    }

    private static string Describe(Gpt2PreTrainedModel model)
    {
        var c = model.Config;
        long parameters = model.ParameterCount;
        return $"{parameters / 1e6:F1}M parameters (n_layer {c.NLayer}, n_embd {c.NEmbd}, n_head {c.NHead}, n_positions {c.NPositions})";
    }

    /// <summary>HF refuses a non-empty output folder unless told to overwrite it; a file there is always an error.</summary>
    private static void CheckOutputDir(string output, bool overwrite)
    {
        if (File.Exists(output)) throw new ArgumentException($"--output-dir '{output}' is a file", "output-dir");
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any() && !overwrite)
            throw new ArgumentException($"--output-dir '{output}' already exists and is not empty: use --overwrite-output-dir to write into it", "output-dir");
    }

    /// <summary>The final model, written beside the output and then moved into it file by file, so a crash never leaves a half-written model.</summary>
    private static void SaveFinal(TrainingTask task, Gpt2PreTrainedModel model, Gpt2Tokenizer tokenizer, string output)
    {
        string partial = Path.Combine(output, ".saving");
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        task.SavePretrained(model, tokenizer, partial);
        foreach (var file in Directory.GetFiles(partial)) File.Move(file, Path.Combine(output, Path.GetFileName(file)), overwrite: true);
        Directory.Delete(partial);
    }
}
