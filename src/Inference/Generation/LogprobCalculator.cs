using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>Log-probabilities of chosen tokens (and the top alternatives) under the model's raw next-token distribution, as OpenAI reports them.</summary>
public static class LogprobCalculator
{
    /// <param name="logits">(N, V) float32</param>
    /// <param name="top">alternatives per row: one count for all rows, or (<paramref name="topPerRow"/>) each row's own</param>
    /// <remarks>Everything comes to the host in one copy (the ids ride as floats: exact below 2^24), so a GPU step syncs once here.</remarks>
    public static TokenLogprob[] Compute(Tensor logits, IReadOnlyList<int> chosen, int top, IReadOnlyList<int>? topPerRow = null)
    {
        using var scope = torch.NewDisposeScope();
        int rows = chosen.Count;
        var logp = logits.log_softmax(-1);
        var index = torch.tensor(chosen.Select(c => (long)c).ToArray(), device: logp.device).unsqueeze(1);
        var parts = new List<Tensor> { logp.gather(1, index) };
        if (top > 0)
        {
            var (values, indices) = logp.topk(top, 1);
            parts.Add(values);
            parts.Add(indices);
        }
        var host = HostCopy.Float32([.. parts]);
        return chosen.Select((c, r) => new TokenLogprob(c, host[r],
            Enumerable.Range(0, topPerRow?[r] ?? top).Select(k => new TopLogprob((int)host[rows + rows * top + r * top + k], host[rows + r * top + k])).ToArray())).ToArray();
    }
}
