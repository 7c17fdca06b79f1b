using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// The losses HF's GPT-2 heads compute when labels are given, in float32 (bf16 and fp16 logits upcast, as HF does);
/// a float64 model keeps float64, where HF would round to float32 (the gradient checks need the precision).
/// </summary>
public static class Losses
{
    public const long IgnoreIndex = -100;

    /// <summary>Logits in the precision a loss is computed in: float32, or float64 for a float64 model.</summary>
    internal static Tensor Upcast(Tensor t) => t.dtype == ScalarType.Float64 ? t : t.to(ScalarType.Float32);

    /// <summary>Causal LM loss: logits[..., :-1, :] predict labels[..., 1:]; mean over labels ≠ −100 of the whole batch.</summary>
    public static Tensor ShiftedCrossEntropy(Tensor logits, Tensor labels)
    {
        using var scope = torch.NewDisposeScope();
        long vocab = logits.shape[^1], t = logits.shape[^2];
        var shiftLogits = Upcast(logits.narrow(-2, 0, t - 1).reshape(-1, vocab));
        var shiftLabels = labels.to(logits.device).narrow(-1, 1, t - 1).reshape(-1);
        return nn.functional.cross_entropy(shiftLogits, shiftLabels, ignore_index: IgnoreIndex).MoveToOuterDisposeScope();
    }

    /// <summary>HF's problem-type switch for sequence classification: regression, single- or multi-label.</summary>
    public static Tensor ForClassification(Tensor logits, Tensor labels, int numLabels, string? problemType)
    {
        using var scope = torch.NewDisposeScope();
        labels = labels.to(logits.device);
        problemType ??= numLabels == 1 ? "regression"
            : labels.dtype is ScalarType.Int64 or ScalarType.Int32 ? "single_label_classification"
            : "multi_label_classification";
        var l = Upcast(logits);
        Tensor loss = problemType switch
        {
            "regression" when numLabels == 1 => nn.functional.mse_loss(l.squeeze(), labels.to(l.dtype).squeeze()),
            "regression" => nn.functional.mse_loss(l, labels.to(l.dtype)),
            "single_label_classification" => nn.functional.cross_entropy(l.view(-1, numLabels), labels.to(ScalarType.Int64).view(-1), ignore_index: IgnoreIndex),
            _ => nn.functional.binary_cross_entropy_with_logits(l, labels.to(l.dtype)),
        };
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Token-level cross-entropy (token classification, multiple choice).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, long ignoreIndex = IgnoreIndex)
    {
        using var scope = torch.NewDisposeScope();
        long classes = logits.shape[^1];
        return nn.functional.cross_entropy(Upcast(logits.reshape(-1, classes)),
            labels.to(logits.device).to(ScalarType.Int64).reshape(-1), ignore_index: ignoreIndex).MoveToOuterDisposeScope();
    }
}
