namespace Gpt2Orleans.Grains;

/// <summary>One streamed token: which returned sequence it belongs to, its id, the text it makes safe to send (never half a UTF-8
/// character, never a stop string), and on the last one why it stopped (and which stop string, if one did) and the usage.</summary>
[GenerateSerializer, Immutable]
public sealed record GeneratedToken(
    [property: Id(0)] int Index,
    [property: Id(1)] int TokenId,
    [property: Id(2)] string Text,
    [property: Id(3)] TokenLogprobs? Logprobs,
    [property: Id(4)] string? FinishReason,
    [property: Id(5)] TokenUsage? Usage,
    [property: Id(7)] string? StopString = null);

/// <summary>
/// The chosen token's log-probability, its own UTF-8 bytes (a token may hold part of a character, so its bytes, not
/// the streamed text, say what it is) and the most likely alternatives (token id, text, log-probability, bytes).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record TokenLogprobs(
    [property: Id(0)] double Logprob,
    [property: Id(1)] IReadOnlyList<TopLogprob> Top,
    [property: Id(2)] byte[]? Bytes = null);

[GenerateSerializer, Immutable]
public sealed record TopLogprob([property: Id(0)] int TokenId, [property: Id(1)] string Text, [property: Id(2)] double Logprob,
    [property: Id(3)] byte[]? Bytes = null);

/// <summary>Prompt and completion tokens of one request; cached prompt tokens were not recomputed (kept KV or prefix cache).</summary>
[GenerateSerializer, Immutable]
public sealed record TokenUsage(
    [property: Id(0)] int PromptTokens,
    [property: Id(1)] int CompletionTokens,
    [property: Id(2)] int CachedPromptTokens);
