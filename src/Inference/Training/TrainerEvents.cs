using System.Text.Json.Nodes;

namespace Gpt2Orleans.Inference.Training;

/// <summary>One optimizer step: the mean training loss of its micro-batches, the learning rate it used and the tokens it saw.</summary>
public sealed record TrainingStep(int Step, double Loss, double LearningRate, long Tokens);

/// <summary>A logging step: the mean loss since the last one (HF's <c>loss</c>), with the epoch reached and the training speed.</summary>
public sealed record TrainingLog(int Step, double Epoch, double Loss, double LearningRate, double TokensPerSecond)
{
    /// <summary>The line trainer_log.jsonl and trainer_state.json's log_history hold for it.</summary>
    public JsonObject ToJson() => LogLine.Of(Step, Epoch, new Dictionary<string, double>
    {
        ["loss"] = Loss, ["learning_rate"] = LearningRate, ["tokens_per_second"] = Math.Round(TokensPerSecond, 1),
    });
}

/// <summary>An evaluation on the validation set at <see cref="Step"/>.</summary>
public sealed record EvaluationLog(int Step, double Epoch, IReadOnlyDictionary<string, double> Metrics)
{
    public JsonObject ToJson() => LogLine.Of(Step, Epoch, Metrics);
}

/// <summary>A log line as HF's log_history writes one: step, epoch, then the values (a non-finite one as null).</summary>
public static class LogLine
{
    public static JsonObject Of(int step, double epoch, IReadOnlyDictionary<string, double> values) =>
        AddTo(new JsonObject { ["step"] = step, ["epoch"] = Math.Round(epoch, 4) }, values);

    public static JsonObject AddTo(JsonObject json, IReadOnlyDictionary<string, double> values)
    {
        foreach (var (key, value) in values) json[key] = double.IsFinite(value) ? value : null;
        return json;
    }
}

/// <summary>What a training run reports as it goes (a progress bar, a JSON Lines log); every callback is optional.</summary>
public sealed record TrainerEvents
{
    public Action<TrainingStep>? OnStep { get; init; }
    public Action<TrainingLog>? OnLog { get; init; }
    public Action<EvaluationLog>? OnEvaluate { get; init; }
    /// <summary>A checkpoint folder was written.</summary>
    public Action<string>? OnSave { get; init; }
}

/// <summary>A finished run: every step's record, the last evaluation (when there was a validation set) and the time it took.</summary>
public sealed record TrainingResult(IReadOnlyList<TrainingStep> Steps, int GlobalStep, IReadOnlyDictionary<string, double>? Evaluation, double Seconds, long Tokens)
{
    /// <summary>The mean training loss of the steps this run took (HF's <c>train_loss</c>).</summary>
    public double TrainLoss => Steps.Count == 0 ? double.NaN : Steps.Average(s => s.Loss);
}
