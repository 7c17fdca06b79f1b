namespace Gpt2Orleans.Inference.Scoring;

/// <summary>
/// Each token's log-probability given its prefix (null for the first, which has no prefix), the mean negative
/// log-likelihood (HF's LM loss with labels = input_ids) and the perplexity exp(loss).
/// </summary>
public sealed record TextScore(IReadOnlyList<int> Ids, IReadOnlyList<double?> TokenLogprobs, double Loss, double Perplexity);
