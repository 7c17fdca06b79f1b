using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Grains.Models;

/// <summary>Between the cluster's messages and the engine's types.</summary>
public static class GenerationParametersMapper
{
    /// <summary>The model's generation_config.json defaults with every parameter that is set taken from <paramref name="p"/>.</summary>
    public static GenerationConfig ToConfig(GenerationParameters p, GenerationConfig defaults) => defaults with
    {
        MaxNewTokens = p.MaxNewTokens ?? defaults.MaxNewTokens,
        DoSample = p.DoSample ?? defaults.DoSample,
        Temperature = p.Temperature ?? defaults.Temperature,
        TopK = p.TopK ?? defaults.TopK,
        TopP = p.TopP ?? defaults.TopP,
        MinP = p.MinP ?? defaults.MinP,
        TypicalP = p.TypicalP ?? defaults.TypicalP,
        RepetitionPenalty = p.RepetitionPenalty ?? defaults.RepetitionPenalty,
        NoRepeatNgramSize = p.NoRepeatNgramSize ?? defaults.NoRepeatNgramSize,
        MinNewTokens = p.MinNewTokens ?? defaults.MinNewTokens,
        NumBeams = p.NumBeams ?? defaults.NumBeams,
        LengthPenalty = p.LengthPenalty ?? defaults.LengthPenalty,
        NumReturnSequences = p.NumReturnSequences ?? defaults.NumReturnSequences,
        Seed = p.Seed ?? defaults.Seed,
        StopStrings = p.StopStrings ?? defaults.StopStrings,
        Logprobs = p.Logprobs ?? defaults.Logprobs,
        EosTokenIds = p.EosTokenIds ?? defaults.EosTokenIds,
        PresencePenalty = p.PresencePenalty ?? defaults.PresencePenalty,
        FrequencyPenalty = p.FrequencyPenalty ?? defaults.FrequencyPenalty,
        SequenceBias = p.LogitBias is { Count: > 0 } bias
            ? bias.Select(b => ((IReadOnlyList<int>)[b.Key], b.Value)).ToList()
            : defaults.SequenceBias,
    };

    public static GeneratedToken ToMessage(TokenEvent e, Func<int, string> tokenText) => new(
        e.SequenceIndex,
        e.TokenId,
        e.TextDelta,
        e.Logprob is { } l ? ToMessage(l, tokenText) : null,
        e.Finish?.Name(),
        e.Usage is { } u ? new TokenUsage(u.PromptTokens, u.CompletionTokens, u.CachedPromptTokens) : null,
        e.StopString);

    /// <summary>A token's log-probability and its alternatives, each alternative with its text.</summary>
    public static TokenLogprobs ToMessage(TokenLogprob logprob, Func<int, string> tokenText) =>
        new(logprob.Logprob, logprob.Top.Select(t => new TopLogprob(t.TokenId, tokenText(t.TokenId), t.Logprob)).ToList());

    /// <summary>Runs <paramref name="work"/> with its engine errors turned into the cluster's (<see cref="ToClusterError"/>).</summary>
    public static async Task<T> WithClusterErrors<T>(Func<Task<T>> work)
    {
        try { return await work(); }
        catch (Exception e) { throw ToClusterError(e); }
    }

    /// <summary>Engine errors as the cluster's errors: bad parameters are the client's to fix, a full queue is retryable.</summary>
    public static Exception ToClusterError(Exception error) => error switch
    {
        Gpt2OrleansException => error,
        EngineOverloadedException overloaded => new RetryLaterException(overloaded.Message, overloaded.RetryAfter.TotalSeconds),
        ArgumentException argument => new InvalidRequestException(StripParameterSuffix(argument), argument.ParamName),
        _ => error,
    };

    /// <summary>ArgumentException appends " (Parameter 'x')" to its message; the cluster's error carries the name separately.</summary>
    private static string StripParameterSuffix(ArgumentException e) =>
        e.ParamName is { } name && e.Message.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal)
            ? e.Message[..^$" (Parameter '{name}')".Length] : e.Message;
}
