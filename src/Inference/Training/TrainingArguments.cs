namespace Gpt2Orleans.Inference.Training;

/// <summary>
/// The training loop's settings, named after HF's <c>TrainingArguments</c> and with its defaults. <see cref="MaxSteps"/>
/// (when positive) overrides <see cref="NumTrainEpochs"/>, and <see cref="WarmupSteps"/> (when positive) overrides
/// <see cref="WarmupRatio"/>, as in HF; <see cref="ForDataset"/> turns both into concrete step counts.
/// </summary>
public sealed record TrainingArguments
{
    public double NumTrainEpochs { get; init; } = 3;
    /// <summary>Optimizer steps to run; −1 (HF's default): as many as <see cref="NumTrainEpochs"/> take.</summary>
    public int MaxSteps { get; init; } = -1;
    public int PerDeviceTrainBatchSize { get; init; } = 8;
    public int PerDeviceEvalBatchSize { get; init; } = 8;
    public int GradientAccumulationSteps { get; init; } = 1;
    public double LearningRate { get; init; } = 5e-5;
    /// <summary>AdamW's decoupled weight decay, on every weight but biases and LayerNorm parameters (as HF).</summary>
    public double WeightDecay { get; init; }
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    public double AdamEpsilon { get; init; } = 1e-8;
    public int WarmupSteps { get; init; }
    public double WarmupRatio { get; init; }
    /// <summary>linear, cosine or constant (after the warm-up).</summary>
    public string LrSchedulerType { get; init; } = "linear";
    /// <summary>Gradient clipping by global norm; 0 turns it off.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    public long Seed { get; init; } = 42;
    /// <summary>Log the mean training loss every this many steps (and at the last).</summary>
    public int LoggingSteps { get; init; } = 500;
    /// <summary>Evaluate on the validation set every this many steps; 0: only at the end.</summary>
    public int EvalSteps { get; init; }
    /// <summary>Write <c>checkpoint-N/</c> every this many steps; 0: none.</summary>
    public int SaveSteps { get; init; }
    /// <summary>Keep at most this many checkpoints (the oldest go first); null: all.</summary>
    public int? SaveTotalLimit { get; init; }
    /// <summary>bf16 mixed precision: the forward and backward in bfloat16, fp32 master weights and optimizer state.</summary>
    public bool Bf16 { get; init; }

    public void Validate()
    {
        static void Require(bool ok, string name, string message)
        {
            if (!ok) throw new ArgumentException($"{name} {message}", name);
        }
        Require(double.IsFinite(NumTrainEpochs) && NumTrainEpochs > 0, "num_train_epochs", $"must be positive, got {NumTrainEpochs}");
        Require(MaxSteps == -1 || MaxSteps >= 1, "max_steps", $"must be at least 1 (or -1: from num_train_epochs), got {MaxSteps}");
        Require(PerDeviceTrainBatchSize is >= 1 and <= 65_536, "per_device_train_batch_size", $"must be between 1 and 65536, got {PerDeviceTrainBatchSize}");
        Require(PerDeviceEvalBatchSize is >= 1 and <= 65_536, "per_device_eval_batch_size", $"must be between 1 and 65536, got {PerDeviceEvalBatchSize}");
        Require(GradientAccumulationSteps is >= 1 and <= 65_536, "gradient_accumulation_steps", $"must be between 1 and 65536, got {GradientAccumulationSteps}");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), "learning_rate", $"must be positive, got {LearningRate}");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), "weight_decay", $"must be ≥ 0, got {WeightDecay}");
        Require(AdamBeta1 is >= 0 and < 1, "adam_beta1", $"must be in [0, 1), got {AdamBeta1}");
        Require(AdamBeta2 is >= 0 and < 1, "adam_beta2", $"must be in [0, 1), got {AdamBeta2}");
        Require(AdamEpsilon > 0 && double.IsFinite(AdamEpsilon), "adam_epsilon", $"must be positive, got {AdamEpsilon}");
        Require(WarmupSteps >= 0 && (MaxSteps < 0 || WarmupSteps <= MaxSteps), "warmup_steps", $"must be between 0 and max_steps ({MaxSteps}), got {WarmupSteps}");
        Require(WarmupRatio is >= 0 and <= 1, "warmup_ratio", $"must be between 0 and 1, got {WarmupRatio}");
        Require(LrSchedulerType is "linear" or "cosine" or "constant", "lr_scheduler_type", $"is '{LrSchedulerType}': use linear, cosine or constant");
        Require(MaxGradNorm >= 0 && double.IsFinite(MaxGradNorm), "max_grad_norm", $"must be ≥ 0, got {MaxGradNorm}");
        Require(LoggingSteps >= 1, "logging_steps", $"must be at least 1, got {LoggingSteps}");
        Require(EvalSteps >= 0, "eval_steps", $"must be ≥ 0, got {EvalSteps}");
        Require(SaveSteps >= 0, "save_steps", $"must be ≥ 0, got {SaveSteps}");
        Require(SaveTotalLimit is null or >= 1, "save_total_limit", $"must be at least 1, got {SaveTotalLimit}");
    }

    /// <summary>
    /// These arguments with <see cref="MaxSteps"/> and <see cref="WarmupSteps"/> made concrete for a training set of
    /// <paramref name="examples"/>, as HF's Trainer computes them: ⌈epochs × max(1, ⌈examples ÷ batch⌉ ÷ accumulation)⌉
    /// steps, and ⌈steps × warmup_ratio⌉ warm-up steps unless warmup_steps is set.
    /// </summary>
    public TrainingArguments ForDataset(int examples)
    {
        Validate();
        if (examples < 1) throw new ArgumentException("the training set holds no examples", "train_file");
        int batchesPerEpoch = (examples + PerDeviceTrainBatchSize - 1) / PerDeviceTrainBatchSize;
        int stepsPerEpoch = Math.Max(1, batchesPerEpoch / GradientAccumulationSteps);
        double fromEpochs = Math.Ceiling(NumTrainEpochs * stepsPerEpoch);
        if (MaxSteps < 0 && fromEpochs > int.MaxValue) throw new ArgumentException($"num_train_epochs {NumTrainEpochs} makes more than {int.MaxValue} steps", "num_train_epochs");
        int steps = MaxSteps > 0 ? MaxSteps : (int)fromEpochs;
        int warmup = WarmupSteps > 0 ? WarmupSteps : (int)Math.Ceiling(steps * WarmupRatio);
        var resolved = this with { MaxSteps = steps, WarmupSteps = Math.Min(warmup, steps) };
        resolved.Validate();
        return resolved;
    }

    /// <summary>The fraction of an epoch one optimizer step covers, for the log's <c>epoch</c> field.</summary>
    public double EpochsPerStep(int examples) => (double)PerDeviceTrainBatchSize * GradientAccumulationSteps / examples;

    /// <summary>The learning rate's factor at optimizer step <paramref name="step"/> (0-based), as HF's schedules compute it.</summary>
    public double LearningRateFactor(int step)
    {
        if (MaxSteps < 1) throw new InvalidOperationException("the schedule needs concrete max_steps: call ForDataset first");
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        double progress = (double)(step - WarmupSteps) / Math.Max(1, MaxSteps - WarmupSteps);
        return LrSchedulerType switch
        {
            "linear" => Math.Max(0, 1 - progress),
            "cosine" => Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * progress))),
            _ => 1,
        };
    }
}
