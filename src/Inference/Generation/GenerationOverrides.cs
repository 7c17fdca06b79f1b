using Gpt2Orleans.Inference.Constraints;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// The <see cref="GenerationConfig"/> fields a caller sets (the command line, a request, a session's defaults), each
/// null when not given. <see cref="ApplyTo"/> is the one place where given values are layered over defaults: a
/// request over a session's defaults over the model's generation_config.json is
/// <c>request.ApplyTo(session.ApplyTo(model))</c>.
/// </summary>
public sealed record GenerationOverrides
{
    public int? MaxNewTokens { get; init; }
    public int? MaxLength { get; init; }
    public int? MinLength { get; init; }
    public int? MinNewTokens { get; init; }
    public bool? DoSample { get; init; }
    public double? Temperature { get; init; }
    public int? TopK { get; init; }
    public double? TopP { get; init; }
    public double? MinP { get; init; }
    public double? TypicalP { get; init; }
    public double? RepetitionPenalty { get; init; }
    public double? PresencePenalty { get; init; }
    public double? FrequencyPenalty { get; init; }
    public int? NoRepeatNgramSize { get; init; }
    public IReadOnlyList<IReadOnlyList<int>>? BadWordsIds { get; init; }
    public IReadOnlyList<(IReadOnlyList<int> Sequence, double Bias)>? SequenceBias { get; init; }
    public IReadOnlyList<int>? SuppressTokens { get; init; }
    public IReadOnlyList<int>? BeginSuppressTokens { get; init; }
    public int? ForcedBosTokenId { get; init; }
    public int? ForcedEosTokenId { get; init; }
    public double? EpsilonCutoff { get; init; }
    public double? EtaCutoff { get; init; }
    public bool? RenormalizeLogits { get; init; }
    public int? NumReturnSequences { get; init; }
    public int? NumBeams { get; init; }
    public int? NumBeamGroups { get; init; }
    public double? DiversityPenalty { get; init; }
    public double? LengthPenalty { get; init; }
    public EarlyStopping? EarlyStopping { get; init; }
    public IReadOnlyList<int>? EosTokenIds { get; init; }
    public int? PadTokenId { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<string>? StopStrings { get; init; }
    public long? Seed { get; init; }
    public int? Logprobs { get; init; }
    public OutputConstraint? Constraint { get; init; }
    public bool? TruncatePrompt { get; init; }

    /// <summary><paramref name="defaults"/> with every field given here taken from here.</summary>
    public GenerationConfig ApplyTo(GenerationConfig defaults) => defaults with
    {
        MaxNewTokens = MaxNewTokens ?? defaults.MaxNewTokens,
        MaxLength = MaxLength ?? defaults.MaxLength,
        MinLength = MinLength ?? defaults.MinLength,
        MinNewTokens = MinNewTokens ?? defaults.MinNewTokens,
        DoSample = DoSample ?? defaults.DoSample,
        Temperature = Temperature ?? defaults.Temperature,
        TopK = TopK ?? defaults.TopK,
        TopP = TopP ?? defaults.TopP,
        MinP = MinP ?? defaults.MinP,
        TypicalP = TypicalP ?? defaults.TypicalP,
        RepetitionPenalty = RepetitionPenalty ?? defaults.RepetitionPenalty,
        PresencePenalty = PresencePenalty ?? defaults.PresencePenalty,
        FrequencyPenalty = FrequencyPenalty ?? defaults.FrequencyPenalty,
        NoRepeatNgramSize = NoRepeatNgramSize ?? defaults.NoRepeatNgramSize,
        BadWordsIds = BadWordsIds ?? defaults.BadWordsIds,
        SequenceBias = SequenceBias ?? defaults.SequenceBias,
        SuppressTokens = SuppressTokens ?? defaults.SuppressTokens,
        BeginSuppressTokens = BeginSuppressTokens ?? defaults.BeginSuppressTokens,
        ForcedBosTokenId = ForcedBosTokenId ?? defaults.ForcedBosTokenId,
        ForcedEosTokenId = ForcedEosTokenId ?? defaults.ForcedEosTokenId,
        EpsilonCutoff = EpsilonCutoff ?? defaults.EpsilonCutoff,
        EtaCutoff = EtaCutoff ?? defaults.EtaCutoff,
        RenormalizeLogits = RenormalizeLogits ?? defaults.RenormalizeLogits,
        NumReturnSequences = NumReturnSequences ?? defaults.NumReturnSequences,
        NumBeams = NumBeams ?? defaults.NumBeams,
        NumBeamGroups = NumBeamGroups ?? defaults.NumBeamGroups,
        DiversityPenalty = DiversityPenalty ?? defaults.DiversityPenalty,
        LengthPenalty = LengthPenalty ?? defaults.LengthPenalty,
        EarlyStopping = EarlyStopping ?? defaults.EarlyStopping,
        EosTokenIds = EosTokenIds ?? defaults.EosTokenIds,
        PadTokenId = PadTokenId ?? defaults.PadTokenId,
        BosTokenId = BosTokenId ?? defaults.BosTokenId,
        StopStrings = StopStrings ?? defaults.StopStrings,
        Seed = Seed ?? defaults.Seed,
        Logprobs = Logprobs ?? defaults.Logprobs,
        Constraint = Constraint ?? defaults.Constraint,
        TruncatePrompt = TruncatePrompt ?? defaults.TruncatePrompt,
    };
}
