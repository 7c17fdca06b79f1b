using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>TypicalLogitsWarper</c> (locally typical sampling): keep the tokens whose surprisal is closest to
/// the distribution's entropy until their mass reaches typical_p.</summary>
public sealed class TypicalLogitsWarper(double mass, int minTokensToKeep = 1) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        var normalized = scores.log_softmax(-1);
        var p = normalized.exp();
        var entropy = (normalized * p).nan_to_num(0.0).sum(-1, keepdim: true).neg();
        var shifted = (normalized.neg() - entropy).abs();
        var (sortedScores, sortedIndices) = shifted.sort(descending: false);
        var sortedLogits = scores.gather(-1, sortedIndices);
        var cumulative = sortedLogits.softmax(-1).cumsum(-1);
        var lastIndex = cumulative.lt(mass).sum(1).clamp_max(sortedScores.shape[^1] - 1);
        var remove = sortedScores.gt(sortedScores.gather(1, lastIndex.view(-1, 1)));
        remove.narrow(-1, 0, minTokensToKeep).fill_(false);
        var toRemove = remove.scatter(1, sortedIndices, remove);
        return scores.masked_fill(toRemove, double.NegativeInfinity);
    }
}
