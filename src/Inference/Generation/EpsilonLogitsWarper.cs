using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// HF's <c>EpsilonLogitsWarper</c> (epsilon_cutoff: drop tokens with probability below ε) and
/// <c>EtaLogitsWarper</c> (eta_cutoff: the cut-off is min(ε, √ε·e^−entropy)); both keep the
/// <paramref name="minTokensToKeep"/> most likely tokens.
/// </summary>
public sealed class EpsilonLogitsWarper(double epsilon, bool entropyAdaptive, int minTokensToKeep = 1) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        var probs = scores.softmax(-1);
        Tensor threshold;
        if (entropyAdaptive)
        {
            var logp = scores.log_softmax(-1);
            var entropy = (logp.exp() * logp).nan_to_num(0.0).sum(-1, keepdim: true).neg();
            threshold = torch.minimum(torch.full_like(entropy, epsilon), entropy.neg().exp() * Math.Sqrt(epsilon));
        }
        else threshold = torch.full([scores.shape[0], 1], epsilon, scores.dtype, scores.device);
        long k = Math.Min(minTokensToKeep, scores.shape[^1]);
        var kth = scores.topk((int)k).values.narrow(-1, k - 1, 1);
        var remove = probs.lt(threshold).logical_and(scores.lt(kth));
        return scores.masked_fill(remove, double.NegativeInfinity);
    }
}
