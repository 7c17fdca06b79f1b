using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>Per-token logits (B, T, num_labels) and the loss when labels were given.</summary>
public sealed record TokenClassifierOutput(Tensor Logits, Tensor? Loss) : IDisposable
{
    public void Dispose() { Logits.Dispose(); Loss?.Dispose(); }
}

/// <summary>HF's <c>GPT2ForTokenClassification</c>: <c>classifier</c> (with bias) on every position.</summary>
public sealed class Gpt2ForTokenClassification : Gpt2PreTrainedModel
{
    public readonly Linear classifier;

    public Gpt2ForTokenClassification(Gpt2Config config, ScalarType dtype, Device device)
        : base("GPT2ForTokenClassification", config, dtype, device)
    {
        classifier = new Linear(config.NEmbd, config.NumLabels, hasBias: true, dtype, device);
        RegisterComponents();
    }

    /// <summary>Loads a Hugging Face folder (config.json + model.safetensors).</summary>
    public static Gpt2ForTokenClassification FromPretrained(string directory, ModelLoadOptions? options = null) =>
        PretrainedLoader.Load(directory, options, (config, dtype, device) => new Gpt2ForTokenClassification(config, dtype, device));

    public TokenClassifierOutput forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, Tensor? labels = null)
    {
        using var output = transformer.forward(inputIds, attentionMask, positionIds);
        using var scope = torch.NewDisposeScope();
        using var noGrad = TrainingDropout.InferenceUnlessTraining(training);
        // HF: classifier_dropout when set, else 0.1 (GPT-2's config has no hidden_dropout).
        var logits = classifier.forward(TrainingDropout.Apply(output.LastHiddenState, Config.ClassifierDropout ?? 0.1, training));
        var loss = labels is null ? null : Losses.CrossEntropy(logits, labels);
        return new TokenClassifierOutput(logits.MoveToOuterDisposeScope(), loss?.MoveToOuterDisposeScope());
    }
}
