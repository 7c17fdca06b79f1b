namespace Gpt2Orleans.Inference.Generation;

/// <summary>Why a sequence stopped: an eos token, a stop string, or the length limit.</summary>
public enum FinishReason { Length, EndOfSequence, StopString }

/// <summary>A candidate token and its log-probability under the model's (unprocessed) next-token distribution.</summary>
public sealed record TopLogprob(int TokenId, double Logprob);

/// <summary>The chosen token's log-probability and, when asked, the most likely alternatives.</summary>
public sealed record TokenLogprob(int TokenId, double Logprob, IReadOnlyList<TopLogprob> Top);

/// <summary>
/// One returned sequence: the new token ids (eos included when it ended the sequence; no padding), their text,
/// optional log-probabilities, why it stopped, and (beam search) HF's length-normalised sequence score.
/// </summary>
public sealed record GeneratedSequence(
    int PromptIndex,
    IReadOnlyList<int> Ids,
    string Text,
    IReadOnlyList<TokenLogprob>? Logprobs,
    FinishReason FinishReason,
    double? Score = null);

/// <summary>A token as it is generated (sampling and greedy search), for streaming to a terminal or a client.</summary>
public sealed record GeneratedToken(int PromptIndex, int SequenceIndex, int TokenId, string TextDelta);
