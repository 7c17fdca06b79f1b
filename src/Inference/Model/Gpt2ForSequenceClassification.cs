using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>Pooled logits (B, num_labels), the position each row was pooled at, and the loss when labels were given.</summary>
public sealed record SequenceClassifierOutput(Tensor Logits, long[] PooledIndex, Tensor? Loss) : IDisposable
{
    public void Dispose() { Logits.Dispose(); Loss?.Dispose(); }
}

/// <summary>
/// HF's <c>GPT2ForSequenceClassification</c>: <c>score</c> (no bias) on every position, pooled at the last
/// non-pad token exactly as HF finds it: (index of the first pad_token_id) − 1, modulo T.
/// </summary>
public sealed class Gpt2ForSequenceClassification : Gpt2PreTrainedModel
{
    public readonly Linear score;

    public Gpt2ForSequenceClassification(Gpt2Config config, ScalarType dtype, Device device)
        : base("GPT2ForSequenceClassification", config, dtype, device)
    {
        score = new Linear(config.NEmbd, config.NumLabels, hasBias: false, dtype, device);
        RegisterComponents();
    }

    /// <summary>Loads a Hugging Face folder (config.json + model.safetensors).</summary>
    public static Gpt2ForSequenceClassification FromPretrained(string directory, ModelLoadOptions? options = null) =>
        PretrainedLoader.Load(directory, options, (config, dtype, device) => new Gpt2ForSequenceClassification(config, dtype, device));

    public SequenceClassifierOutput forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, Tensor? labels = null)
    {
        long b = inputIds.shape[0], t = inputIds.shape[1];
        if (Config.PadTokenId is null && b != 1)
            throw new ArgumentException("Cannot handle batch sizes > 1 if no padding token is defined.");
        using var output = transformer.forward(inputIds, attentionMask, positionIds);
        using var scope = torch.NewDisposeScope();
        using var noGrad = TrainingDropout.InferenceUnlessTraining(training);
        var logits = score.forward(output.LastHiddenState);                     // (B, T, num_labels)
        long[] pooledIndex;
        if (Config.PadTokenId is { } pad)
        {
            var firstPad = inputIds.eq(pad).to(ScalarType.Int32).argmax(-1) - 1; // argmax is 0 where no pad → −1 → T−1
            pooledIndex = firstPad.remainder(t).to(ScalarType.Int64).data<long>().ToArray();
        }
        else pooledIndex = Enumerable.Repeat(t - 1, (int)b).ToArray();
        var pooled = logits[torch.arange(b, device: logits.device), torch.tensor(pooledIndex, device: logits.device)]; // (B, num_labels)
        var loss = labels is null ? null : Losses.ForClassification(pooled, labels, Config.NumLabels, Config.ProblemType);
        return new SequenceClassifierOutput(pooled.MoveToOuterDisposeScope(), pooledIndex, loss?.MoveToOuterDisposeScope());
    }
}
