namespace Gpt2Orleans.Grains;

/// <summary>
/// Sampling and stopping parameters as they cross the cluster (HF generate's names). Null means "not set": a
/// session's defaults fill it, then the model's generation_config.json, then HF's defaults (layered in one place, on
/// the model's silo: GenerationOverrides.ApplyTo).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record GenerationParameters
{
    [Id(0)] public int? MaxNewTokens { get; init; }
    [Id(1)] public bool? DoSample { get; init; }
    [Id(2)] public double? Temperature { get; init; }
    [Id(3)] public int? TopK { get; init; }
    [Id(4)] public double? TopP { get; init; }
    [Id(5)] public double? MinP { get; init; }
    [Id(6)] public double? TypicalP { get; init; }
    [Id(7)] public double? RepetitionPenalty { get; init; }
    [Id(8)] public int? NoRepeatNgramSize { get; init; }
    [Id(9)] public int? MinNewTokens { get; init; }
    [Id(10)] public int? NumBeams { get; init; }
    [Id(11)] public double? LengthPenalty { get; init; }
    [Id(12)] public int? NumReturnSequences { get; init; }
    [Id(13)] public long? Seed { get; init; }
    [Id(14)] public IReadOnlyList<string>? StopStrings { get; init; }
    [Id(15)] public int? Logprobs { get; init; }
    [Id(16)] public IReadOnlyList<int>? EosTokenIds { get; init; }
    [Id(17)] public double? PresencePenalty { get; init; }
    [Id(18)] public double? FrequencyPenalty { get; init; }
    /// <summary>OpenAI's logit_bias: token id → bias added to its logit.</summary>
    [Id(19)] public IReadOnlyDictionary<int, double>? LogitBias { get; init; }
    /// <summary>HF's max_length: prompt plus new tokens, bounded by the model's context; <see cref="MaxNewTokens"/> wins when set.</summary>
    [Id(20)] public int? MaxLength { get; init; }
    /// <summary>What the reply must be (structured outputs, a tool call); null: free text.</summary>
    [Id(21)] public ResponseConstraint? Constraint { get; init; }
}
