using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>MinPLogitsWarper</c>: drops tokens whose probability is below min_p × the top probability.</summary>
public sealed class MinPLogitsWarper(double minP, int minTokensToKeep = 1) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        var probs = scores.softmax(-1);
        var top = probs.max(-1, keepdim: true).values;
        var remove = probs.lt(top * minP);
        var sortedIndices = scores.argsort(-1, descending: true);
        var sortedRemove = remove.gather(-1, sortedIndices);
        sortedRemove.narrow(-1, 0, minTokensToKeep).fill_(false);
        var toRemove = sortedRemove.scatter(1, sortedIndices, sortedRemove);
        return scores.masked_fill(toRemove, double.NegativeInfinity);
    }
}
