namespace Gpt2Orleans.Inference.Generation;

/// <summary>A candidate token and its log-probability under the model's (unprocessed) next-token distribution.</summary>
public sealed record TopLogprob(int TokenId, double Logprob);

/// <summary>The chosen token's log-probability and, when asked, the most likely alternatives.</summary>
public sealed record TokenLogprob(int TokenId, double Logprob, IReadOnlyList<TopLogprob> Top);
