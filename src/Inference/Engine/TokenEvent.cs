using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>Token counts of a finished sequence; cached prompt tokens were served from the prefix cache.</summary>
public sealed record Usage(int PromptTokens, int CompletionTokens, int CachedPromptTokens);

/// <summary>
/// One generated token of one of a request's sequences (<see cref="SequenceIndex"/> for n &gt; 1): its id, the text it
/// completes (never half a character), its log-probability when asked, and on the last one the finish reason and usage.
/// </summary>
/// <see cref="KeptSequence"/> (last event, when asked to keep it) names the sequence whose KV stays for the next turn.
/// Beam search streams each returned sequence once it is chosen, its last event carrying HF's sequence score.
public sealed record TokenEvent(int SequenceIndex, int TokenId, string TextDelta, TokenLogprob? Logprob, FinishReason? Finish, Usage? Usage,
    long? KeptSequence = null, double? Score = null);
