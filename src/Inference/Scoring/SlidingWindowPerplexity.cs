namespace Gpt2Orleans.Inference.Scoring;

/// <summary>A language model's (or a baseline's) mean negative log-likelihood per predicted token and its exponential.</summary>
public sealed record Perplexity(double Loss, double Value, long Tokens);

/// <summary>
/// Perplexity of a token stream longer than the model's context, as HF's "Perplexity of fixed-length models" guide
/// computes it: windows of <c>maxLength</c> tokens advancing by <c>stride</c>; each window scores only the tokens the
/// windows before it did not (the rest are context), and its mean loss is weighted by its scored labels less the
/// one the shift drops, exactly as the guide's <c>num_loss_tokens</c>.
/// </summary>
public static class SlidingWindowPerplexity
{
    /// <param name="tokenLogprobs">a window's log-probability of each of its tokens given the ones before it (null for its first)</param>
    public static async Task<Perplexity> ComputeAsync(IReadOnlyList<int> ids, int maxLength, int stride,
        Func<IReadOnlyList<int>, Task<IReadOnlyList<double?>>> tokenLogprobs)
    {
        if (ids.Count < 2) throw new ArgumentException("perplexity needs at least two tokens", "file");
        if (maxLength < 2) throw new ArgumentException($"max_length must be at least 2, got {maxLength}", "max_length");
        if (stride < 1 || stride > maxLength) throw new ArgumentException($"stride must be between 1 and max_length ({maxLength}), got {stride}", "stride");
        double nllSum = 0;
        long tokens = 0;
        int previousEnd = 0;
        for (int begin = 0; begin < ids.Count; begin += stride)
        {
            int end = Math.Min(begin + maxLength, ids.Count), scored = end - previousEnd, length = end - begin;
            var window = ids.Skip(begin).Take(length).ToList();
            var logprobs = await tokenLogprobs(window);
            int first = Math.Max(1, length - scored); // the labels the window scores (the first token has no prediction)
            double sum = 0;
            for (int p = first; p < length; p++) sum -= logprobs[p] ?? throw new InvalidOperationException($"no log-probability for position {p}");
            int weight = scored - 1;
            if (length - first > 0) nllSum += sum / (length - first) * weight;
            tokens += weight;
            previousEnd = end;
            if (end == ids.Count) break;
        }
        if (tokens <= 0) throw new ArgumentException("no token was scored: lower the stride or give more text", "stride");
        double loss = nllSum / tokens;
        return new Perplexity(loss, Math.Exp(loss), tokens);
    }
}
