using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>TopKLogitsWarper</c>: keeps scores ≥ the k-th largest (ties at the boundary are kept).</summary>
public sealed class TopKLogitsWarper(int topK, int minTokensToKeep = 1) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        long k = Math.Min(Math.Max(topK, minTokensToKeep), scores.shape[^1]);
        var kth = scores.topk((int)k).values.narrow(-1, k - 1, 1);
        return scores.masked_fill(scores.lt(kth), double.NegativeInfinity);
    }
}
