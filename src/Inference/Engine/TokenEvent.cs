using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>Token counts of a finished sequence; cached prompt tokens were served from the prefix cache or a kept conversation.</summary>
public sealed record Usage(int PromptTokens, int CompletionTokens, int CachedPromptTokens);

/// <summary>
/// One generated token of one of a request's sequences (<see cref="SequenceIndex"/> for n &gt; 1): its id, the text it
/// makes safe to send (never half a character, never a stop string or what follows one), its log-probability when
/// asked, and on the last one the finish reason, the stop string that ended it (<see cref="StopString"/>; an eos
/// ends it with <see cref="FinishReason.EndOfSequence"/> and is <see cref="TokenId"/>) and usage.
/// Beam search streams each returned sequence once it is chosen, its last event carrying HF's sequence score.
/// </summary>
public sealed record TokenEvent(int SequenceIndex, int TokenId, string TextDelta, TokenLogprob? Logprob, FinishReason? Finish, Usage? Usage,
    double? Score = null, string? StopString = null);
