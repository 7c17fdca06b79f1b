using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>LM logits (B, C, T, V), multiple-choice logits (B, C), and both losses when labels were given.</summary>
public sealed record DoubleHeadsOutput(Tensor Logits, Tensor McLogits, Tensor? Loss, Tensor? McLoss) : IDisposable
{
    public void Dispose() { Logits.Dispose(); McLogits.Dispose(); Loss?.Dispose(); McLoss?.Dispose(); }
}

/// <summary>
/// HF's <c>GPT2DoubleHeadsModel</c>: the tied LM head plus a multiple-choice <see cref="SequenceSummary"/>
/// (HF forces num_labels = 1 for it, so each choice gets one score).
/// </summary>
public sealed class Gpt2DoubleHeadsModel : Gpt2PreTrainedModel
{
    public readonly Linear? lm_head;
    public readonly SequenceSummary multiple_choice_head;

    public Gpt2DoubleHeadsModel(Gpt2Config config, ScalarType dtype, Device device) : base("GPT2DoubleHeadsModel", config, dtype, device)
    {
        if (!config.TieWordEmbeddings) lm_head = new Linear(config.NEmbd, config.VocabSize, hasBias: false, dtype, device);
        multiple_choice_head = new SequenceSummary(config, numLabels: 1, dtype, device);
        RegisterComponents();
    }

    /// <summary>Loads a Hugging Face folder (config.json + model.safetensors).</summary>
    public static Gpt2DoubleHeadsModel FromPretrained(string directory, ModelLoadOptions? options = null) =>
        PretrainedLoader.Load(directory, options, (config, dtype, device) => new Gpt2DoubleHeadsModel(config, dtype, device));

    public override IReadOnlyCollection<string> TiedKeys => Config.TieWordEmbeddings ? ["lm_head.weight"] : [];

    /// <param name="inputIds">(B, C, T): C choices per example.</param>
    /// <param name="mcTokenIds">(B, C): the position whose hidden state scores each choice (cls_index).</param>
    public DoubleHeadsOutput forward(Tensor inputIds, Tensor? mcTokenIds = null, Tensor? attentionMask = null,
        Tensor? labels = null, Tensor? mcLabels = null)
    {
        if (inputIds.dim() != 3) throw new ArgumentException("input_ids must be (batch, choices, length)");
        long b = inputIds.shape[0], c = inputIds.shape[1], t = inputIds.shape[2];
        using var output = transformer.forward(inputIds.reshape(b * c, t), attentionMask?.reshape(b * c, t));
        using var scope = torch.NewDisposeScope();
        using var noGrad = TrainingDropout.InferenceUnlessTraining(training);
        var hidden = output.LastHiddenState.view(b, c, t, -1);                 // (B, C, T, E)
        var logits = nn.functional.linear(hidden, lm_head?.weight ?? transformer.wte.DenseWeightOutIn);
        var mcLogits = multiple_choice_head.forward(hidden, mcTokenIds).squeeze(-1); // (B, C)
        var loss = labels is null ? null : Losses.ShiftedCrossEntropy(logits, labels);
        var mcLoss = mcLabels is null ? null : Losses.CrossEntropy(mcLogits, mcLabels);
        return new DoubleHeadsOutput(logits.MoveToOuterDisposeScope(), mcLogits.MoveToOuterDisposeScope(),
            loss?.MoveToOuterDisposeScope(), mcLoss?.MoveToOuterDisposeScope());
    }
}
