using System.Text.Json;
using System.Text.Json.Nodes;
using Gpt2Orleans.Inference.Constraints;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Grains.Models;

/// <summary>Between the cluster's messages and the engine's types.</summary>
public static class GenerationParametersMapper
{
    /// <summary>
    /// The config a request runs with: its parameters over the session's defaults (when it has a session) over the
    /// model's generation_config.json, layered by <see cref="GenerationOverrides.ApplyTo"/>.
    /// </summary>
    public static GenerationConfig ToConfig(GenerationParameters p, GenerationParameters? sessionDefaults, GenerationConfig modelDefaults) =>
        ToOverrides(p).ApplyTo(sessionDefaults is null ? modelDefaults : ToOverrides(sessionDefaults).ApplyTo(modelDefaults));

    /// <summary>The cluster's message as the engine's overrides, field by field (OpenAI's logit_bias is a one-token sequence_bias).</summary>
    public static GenerationOverrides ToOverrides(GenerationParameters p) => new()
    {
        MaxNewTokens = p.MaxNewTokens,
        MaxLength = p.MaxLength,
        DoSample = p.DoSample,
        Temperature = p.Temperature,
        TopK = p.TopK,
        TopP = p.TopP,
        MinP = p.MinP,
        TypicalP = p.TypicalP,
        RepetitionPenalty = p.RepetitionPenalty,
        NoRepeatNgramSize = p.NoRepeatNgramSize,
        MinNewTokens = p.MinNewTokens,
        NumBeams = p.NumBeams,
        LengthPenalty = p.LengthPenalty,
        NumReturnSequences = p.NumReturnSequences,
        Seed = p.Seed,
        StopStrings = p.StopStrings,
        Logprobs = p.Logprobs,
        EosTokenIds = p.EosTokenIds,
        PresencePenalty = p.PresencePenalty,
        FrequencyPenalty = p.FrequencyPenalty,
        SequenceBias = p.LogitBias is { Count: > 0 } bias ? bias.Select(b => ((IReadOnlyList<int>)[b.Key], b.Value)).ToList() : null,
        Constraint = p.Constraint is { } c ? ToConstraint(c) : null,
    };

    /// <summary>The cluster's constraint as the engine's; a tool call is its functions' parameter schemas framed as <see cref="ToolCallText"/> writes them.</summary>
    public static OutputConstraint ToConstraint(ResponseConstraint c) => c.Kind switch
    {
        "json_object" => new OutputConstraint(OutputConstraintKind.JsonObject, "", c.Parameter),
        "json_schema" => new OutputConstraint(OutputConstraintKind.JsonSchema, c.Source, c.Parameter),
        "regex" => new OutputConstraint(OutputConstraintKind.Regex, c.Source, c.Parameter),
        "choice" => new OutputConstraint(OutputConstraintKind.Choice, c.Source, c.Parameter),
        "tool_call" => new OutputConstraint(OutputConstraintKind.FramedSchemas, ToolFrames(c), c.Parameter),
        _ => throw new InvalidRequestException($"'{c.Kind}' is not a kind of output constraint", c.Parameter),
    };

    private static string ToolFrames(ResponseConstraint c)
    {
        using var tools = JsonDocument.Parse(c.Source);
        var frames = new JsonArray();
        foreach (var tool in tools.RootElement.EnumerateArray())
        {
            string name = tool.GetProperty("name").GetString()!;
            if (!ToolCallText.IsValidName(name)) throw new InvalidRequestException($"the function name '{name}' must be 1–64 letters, digits, '_' or '-'", c.Parameter);
            frames.Add(new JsonObject
            {
                ["prefix"] = ToolCallText.Prefix(name),
                ["schema"] = JsonNode.Parse(ToolCallText.ParametersOrEmpty(tool.TryGetProperty("parameters", out var p) ? p : null)),
                ["suffix"] = ToolCallText.Suffix,
            });
        }
        return frames.ToJsonString();
    }

    public static GeneratedToken ToMessage(TokenEvent e, Func<int, string> tokenText, Func<int, byte[]> tokenBytes) => new(
        e.SequenceIndex,
        e.TokenId,
        e.TextDelta,
        e.Logprob is { } l ? ToMessage(l, tokenText, tokenBytes) : null,
        e.Finish?.Name(),
        e.Usage is { } u ? new TokenUsage(u.PromptTokens, u.CompletionTokens, u.CachedPromptTokens) : null,
        e.StopString);

    /// <summary>A token's log-probability and bytes, and its alternatives, each with its text and bytes.</summary>
    public static TokenLogprobs ToMessage(TokenLogprob logprob, Func<int, string> tokenText, Func<int, byte[]> tokenBytes) =>
        new(logprob.Logprob, logprob.Top.Select(t => new TopLogprob(t.TokenId, tokenText(t.TokenId), t.Logprob, tokenBytes(t.TokenId))).ToList(),
            tokenBytes(logprob.TokenId));

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
