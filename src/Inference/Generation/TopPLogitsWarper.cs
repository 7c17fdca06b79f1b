using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>TopPLogitsWarper</c> (nucleus): sort ascending, drop tokens whose cumulative probability is
/// ≤ 1 − top_p, always keeping the <paramref name="minTokensToKeep"/> most likely.</summary>
public sealed class TopPLogitsWarper(double topP, int minTokensToKeep = 1) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        var (sorted, indices) = scores.sort(descending: false);
        var cumulative = sorted.softmax(-1).cumsum(-1);
        var remove = cumulative.le(1 - topP);
        remove.narrow(-1, remove.shape[^1] - minTokensToKeep, minTokensToKeep).fill_(false);
        var toRemove = remove.scatter(1, indices, remove);
        return scores.masked_fill(toRemove, double.NegativeInfinity);
    }
}
