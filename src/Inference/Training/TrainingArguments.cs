namespace Gpt2Orleans.Inference.Training;

/// <summary>The training loop's settings, named after HF's <c>TrainingArguments</c> (the ones the loop honours so far).</summary>
public sealed record TrainingArguments
{
    public int MaxSteps { get; init; } = 100;
    public int PerDeviceTrainBatchSize { get; init; } = 8;
    public int GradientAccumulationSteps { get; init; } = 1;
    public double LearningRate { get; init; } = 5e-5;
    /// <summary>AdamW's decoupled weight decay, on every weight but biases and LayerNorm parameters (as HF).</summary>
    public double WeightDecay { get; init; }
    public int WarmupSteps { get; init; }
    /// <summary>linear, cosine or constant (after the warm-up).</summary>
    public string LrSchedulerType { get; init; } = "linear";
    /// <summary>Gradient clipping by global norm; 0 turns it off.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    public long Seed { get; init; } = 42;

    public void Validate()
    {
        if (MaxSteps < 1) throw new ArgumentException($"max_steps must be at least 1, got {MaxSteps}", "max_steps");
        if (PerDeviceTrainBatchSize < 1) throw new ArgumentException($"per_device_train_batch_size must be at least 1, got {PerDeviceTrainBatchSize}", "per_device_train_batch_size");
        if (GradientAccumulationSteps < 1) throw new ArgumentException($"gradient_accumulation_steps must be at least 1, got {GradientAccumulationSteps}", "gradient_accumulation_steps");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"learning_rate must be positive, got {LearningRate}", "learning_rate");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"weight_decay must be ≥ 0, got {WeightDecay}", "weight_decay");
        if (WarmupSteps < 0 || WarmupSteps > MaxSteps) throw new ArgumentException($"warmup_steps must be between 0 and max_steps ({MaxSteps}), got {WarmupSteps}", "warmup_steps");
        if (LrSchedulerType is not ("linear" or "cosine" or "constant")) throw new ArgumentException($"lr_scheduler_type is '{LrSchedulerType}': use linear, cosine or constant", "lr_scheduler_type");
        if (!(MaxGradNorm >= 0)) throw new ArgumentException($"max_grad_norm must be ≥ 0, got {MaxGradNorm}", "max_grad_norm");
    }

    /// <summary>The learning rate's factor at optimizer step <paramref name="step"/> (0-based), as HF's schedules compute it.</summary>
    public double LearningRateFactor(int step)
    {
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
