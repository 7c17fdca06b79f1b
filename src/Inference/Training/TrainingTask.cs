using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Scoring;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>
/// What is trained: which head (its model class), how its batch's loss is computed, and how it is evaluated. The
/// trainer is the same loop for every task; a task holds no model, so the loop can run it on a bf16 working copy.
/// </summary>
public abstract class TrainingTask
{
    /// <summary>causal-lm, sequence-classification or token-classification (the CLI's <c>--task</c>).</summary>
    public abstract string Name { get; }

    /// <summary>HF's class name for this head, as config.json's <c>architectures</c> records it.</summary>
    public abstract string Architecture { get; }

    /// <summary>Labels per token (causal LM, token classification) rather than one per example.</summary>
    protected abstract bool LabelsPerToken { get; }

    public abstract Gpt2PreTrainedModel Create(Gpt2Config config, ScalarType dtype, Device device);

    /// <summary>Reads, splits and encodes the run's files (see <see cref="TrainingTask{TRecord}"/>).</summary>
    public abstract TrainingData LoadData(DataOptions options);

    /// <summary>The mean loss of <paramref name="batch"/>, with its graph while the model trains.</summary>
    public abstract Tensor Loss(Gpt2PreTrainedModel model, TrainingBatch batch);

    /// <summary>
    /// Back-propagates <paramref name="scale"/> × the batch's mean loss into the parameters' gradients and returns that
    /// scaled loss (a task may do it in pieces; the gradients are the same).
    /// </summary>
    public virtual double Backward(Gpt2PreTrainedModel model, TrainingBatch batch, double scale)
    {
        using var loss = Loss(model, batch);
        using var scaled = loss * scale;
        scaled.backward();
        return scaled.item<float>();
    }

    /// <summary>Metrics over <paramref name="examples"/> in eval mode, named as HF's Trainer names them (<c>eval_loss</c>, …).</summary>
    public abstract IReadOnlyDictionary<string, double> Evaluate(Gpt2PreTrainedModel model, IReadOnlyList<TrainingExample> examples, int batchSize);

    public static IReadOnlyList<string> Names { get; } = ["causal-lm", "sequence-classification", "token-classification"];

    public static TrainingTask Parse(string name) => name switch
    {
        "causal-lm" => new CausalLmTask(),
        "sequence-classification" => new SequenceClassificationTask(),
        "token-classification" => new TokenClassificationTask(),
        _ => throw new ArgumentException($"task '{name}' is not one of {string.Join(", ", Names)}", "task"),
    };

    /// <summary>A model of this head from <paramref name="config"/> with HF's initialisation, seeded.</summary>
    public Gpt2PreTrainedModel CreateRandom(Gpt2Config config, long seed, ModelLoadOptions options) =>
        Gpt2Initializer.CreateRandom(config, seed, options, Create);

    /// <summary>
    /// A checkpoint loaded into this head, its config changed by <paramref name="configure"/> (the label set); weights
    /// the checkpoint lacks (a new head) are initialised as HF does and reported, as HF's <c>from_pretrained</c>.
    /// </summary>
    public Gpt2PreTrainedModel Load(string directory, ModelLoadOptions options, Func<Gpt2Config, Gpt2Config> configure) =>
        PretrainedLoader.Load(directory, options with { Strict = false }, (config, dtype, device) => Create(configure(config), dtype, device));

    /// <summary>The id that pads a batch: the config's pad_token_id, else its eos id (HF's usual GPT-2 choice).</summary>
    private static long PadId(Gpt2PreTrainedModel model) => model.Config.PadTokenId ?? model.Config.EosTokenIds.FirstOrDefault(0);

    public TrainingBatch Batch(Gpt2PreTrainedModel model, IReadOnlyList<TrainingExample> examples) =>
        TrainingBatch.Create(examples, PadId(model), LabelsPerToken, model.Device);

    /// <summary>Writes the model, its tokenizer and (for a language model) generation_config.json, as HF's <c>save_pretrained</c>.</summary>
    public virtual void SavePretrained(Gpt2PreTrainedModel model, Gpt2Tokenizer tokenizer, string directory)
    {
        model.SavePretrained(directory);
        tokenizer.SavePretrained(directory);
    }

    /// <summary>Runs <paramref name="score"/> over the examples in eval-mode batches and restores the model's mode.</summary>
    protected void ForEachBatch(Gpt2PreTrainedModel model, IReadOnlyList<TrainingExample> examples, int batchSize,
        Action<IReadOnlyList<TrainingExample>, TrainingBatch> score)
    {
        if (examples.Count == 0) throw new ArgumentException("no validation examples", "validation_file");
        bool training = model.training;
        model.eval();
        try
        {
            for (int start = 0; start < examples.Count; start += batchSize)
            {
                using var scope = torch.NewDisposeScope();
                var chunk = Enumerable.Range(start, Math.Min(batchSize, examples.Count - start)).Select(i => examples[i]).ToList();
                using var batch = Batch(model, chunk);
                score(chunk, batch);
            }
        }
        finally { if (training) model.train(); }
    }

    /// <summary>The model's label names in index order.</summary>
    protected static IReadOnlyList<string> Labels(Gpt2PreTrainedModel model) => LabelSet.Of(model.Config).Names;

    /// <summary>HF-style metric names: eval_loss, eval_accuracy, eval_macro_f1 and eval_f1_&lt;label&gt; for each label.</summary>
    protected static Dictionary<string, double> Metrics(double loss, ClassificationMetrics metrics)
    {
        var result = new Dictionary<string, double> { ["eval_loss"] = loss, ["eval_accuracy"] = metrics.Accuracy, ["eval_macro_f1"] = metrics.MacroF1 };
        foreach (var label in metrics.PerLabel) result[$"eval_f1_{label.Label}"] = label.F1;
        return result;
    }
}
