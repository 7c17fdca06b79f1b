namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// One returned sequence: the new token ids (eos included when it ended the sequence; no padding), their text
/// (special tokens skipped, a stop string and what follows it cut out), optional log-probabilities, why it stopped
/// (and the stop string that did), and (beam search) HF's length-normalised sequence score.
/// </summary>
public sealed record GeneratedSequence(
    int PromptIndex,
    IReadOnlyList<int> Ids,
    string Text,
    IReadOnlyList<TokenLogprob>? Logprobs,
    FinishReason FinishReason,
    double? Score = null,
    string? StopString = null);
