using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>Span start and end logits (B, T) and the loss when positions were given.</summary>
public sealed record QuestionAnsweringOutput(Tensor StartLogits, Tensor EndLogits, Tensor? Loss) : IDisposable
{
    public void Dispose() { StartLogits.Dispose(); EndLogits.Dispose(); Loss?.Dispose(); }
}

/// <summary>HF's <c>GPT2ForQuestionAnswering</c>: <c>qa_outputs</c> (E → 2) gives start and end logits per token.</summary>
public sealed class Gpt2ForQuestionAnswering : Gpt2PreTrainedModel
{
    public readonly Linear qa_outputs;

    public Gpt2ForQuestionAnswering(Gpt2Config config, ScalarType dtype, Device device)
        : base("GPT2ForQuestionAnswering", config, dtype, device)
    {
        qa_outputs = new Linear(config.NEmbd, 2, hasBias: true, dtype, device);
        RegisterComponents();
    }

    /// <summary>Loads a Hugging Face folder (config.json + model.safetensors).</summary>
    public static Gpt2ForQuestionAnswering FromPretrained(string directory, ModelLoadOptions? options = null) =>
        PretrainedLoader.Load(directory, options, (config, dtype, device) => new Gpt2ForQuestionAnswering(config, dtype, device));

    public QuestionAnsweringOutput forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        Tensor? startPositions = null, Tensor? endPositions = null)
    {
        using var output = transformer.forward(inputIds, attentionMask, positionIds);
        using var scope = torch.NewDisposeScope();
        using var noGrad = TrainingDropout.InferenceUnlessTraining(training);
        var logits = qa_outputs.forward(output.LastHiddenState);                 // (B, T, 2)
        var start = logits.select(-1, 0).contiguous();
        var end = logits.select(-1, 1).contiguous();
        Tensor? loss = null;
        if (startPositions is not null && endPositions is not null)
        {
            // HF: positions outside the sequence are clamped to T and ignored.
            long ignored = start.shape[1];
            var s = startPositions.to(start.device).clamp(0, ignored);
            var e = endPositions.to(start.device).clamp(0, ignored);
            loss = (Losses.CrossEntropy(start, s, ignored) + Losses.CrossEntropy(end, e, ignored)) / 2.0;
        }
        return new QuestionAnsweringOutput(start.MoveToOuterDisposeScope(), end.MoveToOuterDisposeScope(), loss?.MoveToOuterDisposeScope());
    }
}
