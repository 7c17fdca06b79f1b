using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>Log-probabilities of chosen tokens (and the top alternatives) under the model's raw next-token distribution, as OpenAI reports them.</summary>
public static class LogprobCalculator
{
    /// <param name="logits">(N, V) float32</param>
    public static TokenLogprob[] Compute(Tensor logits, IReadOnlyList<int> chosen, int top)
    {
        using var scope = torch.NewDisposeScope();
        var logp = logits.log_softmax(-1);
        var index = torch.tensor(chosen.Select(c => (long)c).ToArray(), device: logp.device).unsqueeze(1);
        var picked = logp.gather(1, index).cpu().data<float>().ToArray();
        float[] topValues = [];
        long[] topIds = [];
        if (top > 0)
        {
            var (values, indices) = logp.topk(top, 1);
            topValues = values.cpu().data<float>().ToArray();
            topIds = indices.cpu().data<long>().ToArray();
        }
        return chosen.Select((c, r) => new TokenLogprob(c, picked[r],
            Enumerable.Range(r * top, top).Select(k => new TopLogprob((int)topIds[k], topValues[k])).ToArray())).ToArray();
    }
}
