using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Constraints;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// HF's <c>GenerationConfig</c>: the arguments of <c>generate</c>, with HF's defaults (note top_k = 50 applies
/// whenever sampling). <see cref="Validate"/> rejects contradictory or out-of-range values with the parameter's name.
/// </summary>
public sealed record GenerationConfig
{
    public int? MaxNewTokens { get; init; }
    /// <summary>Prompt plus new tokens (HF's max_length, default 20); <see cref="MaxNewTokens"/> wins when set.</summary>
    public int MaxLength { get; init; } = 20;
    public int MinLength { get; init; }
    public int? MinNewTokens { get; init; }
    public bool DoSample { get; init; }
    public double Temperature { get; init; } = 1.0;
    public int TopK { get; init; } = 50;
    public double TopP { get; init; } = 1.0;
    public double? MinP { get; init; }
    public double TypicalP { get; init; } = 1.0;
    public double RepetitionPenalty { get; init; } = 1.0;
    /// <summary>OpenAI's presence penalty (−2..2): subtracted once from every token already generated.</summary>
    public double PresencePenalty { get; init; }
    /// <summary>OpenAI's frequency penalty (−2..2): subtracted once per earlier occurrence in the generated tokens.</summary>
    public double FrequencyPenalty { get; init; }
    public int NoRepeatNgramSize { get; init; }
    public IReadOnlyList<IReadOnlyList<int>>? BadWordsIds { get; init; }
    /// <summary>HF's sequence_bias: a bias added to a sequence's last token (OpenAI's logit_bias is the one-token case).</summary>
    public IReadOnlyList<(IReadOnlyList<int> Sequence, double Bias)>? SequenceBias { get; init; }
    public IReadOnlyList<int>? SuppressTokens { get; init; }
    public IReadOnlyList<int>? BeginSuppressTokens { get; init; }
    public int? ForcedBosTokenId { get; init; }
    public int? ForcedEosTokenId { get; init; }
    public double EpsilonCutoff { get; init; }
    public double EtaCutoff { get; init; }
    public bool RenormalizeLogits { get; init; }
    public int NumReturnSequences { get; init; } = 1;
    public int NumBeams { get; init; } = 1;
    public int NumBeamGroups { get; init; } = 1;
    public double DiversityPenalty { get; init; }
    public double LengthPenalty { get; init; } = 1.0;
    public EarlyStopping EarlyStopping { get; init; } = EarlyStopping.False;
    /// <summary>Null: the model's eos_token_id (config.json). Empty: never stop on a token.</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }
    /// <summary>Null: the model's pad_token_id, else the first eos id (as HF does, with a warning there).</summary>
    public int? PadTokenId { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<string>? StopStrings { get; init; }
    /// <summary>Seed for sampling; each returned sequence draws from its own generator seeded from it.</summary>
    public long? Seed { get; init; }
    /// <summary>Null: no log-probabilities. 0: the chosen token's. N: also the N most likely tokens'.</summary>
    public int? Logprobs { get; init; }
    /// <summary>What the output must be (a JSON schema, a regex, a choice): constrained decoding. Null: free text.</summary>
    public OutputConstraint? Constraint { get; init; }
    /// <summary>Drop the oldest prompt tokens when prompt + new tokens would exceed n_positions (otherwise an error).</summary>
    public bool TruncatePrompt { get; init; }

    public bool IsBeamSearch => NumBeams > 1;

    /// <summary>Temperatures below this sample as greedy search does (vLLM's rule): dividing logits by, say, 1e-38
    /// overflows them to ±∞, and greedy is the limit of sampling as the temperature goes to 0.</summary>
    public const double MinSamplingTemperature = 1e-5;

    /// <summary>Whether tokens are drawn (HF's do_sample), or chosen greedily (also at a temperature under <see cref="MinSamplingTemperature"/>).</summary>
    public bool Samples => DoSample && Temperature >= MinSamplingTemperature;

    /// <summary>HF's early_stopping values: true, false or "never"; null for anything else.</summary>
    public static EarlyStopping? ParseEarlyStopping(string text) => text.ToLowerInvariant() switch
    {
        "false" => EarlyStopping.False,
        "true" => EarlyStopping.True,
        "never" => EarlyStopping.Never,
        _ => null,
    };

    /// <summary>New tokens for a prompt: <see cref="MaxNewTokens"/>, or what <see cref="MaxLength"/> leaves, bounded by the model's <paramref name="context"/>.</summary>
    public int MaxNewTokensFor(int promptLength, int context) => MaxNewTokens ?? Math.Max(0, Math.Min(MaxLength, context) - promptLength);

    /// <summary>The eos ids in force: this config's, else the model's (config.json).</summary>
    public IReadOnlyList<int> ResolveEos(Gpt2Config model) => EosTokenIds ?? model.EosTokenIds;

    /// <summary>The pad id in force: this config's, the model's, or (as HF does, with a warning there) the first eos id.</summary>
    public int ResolvePad(Gpt2Config model, int fallback) => PadTokenId ?? model.PadTokenId ?? ResolveEos(model).FirstOrDefault(fallback);

    /// <summary>A checkpoint folder's generation_config.json (HF's per-model defaults for generate), or HF's defaults without one.</summary>
    public static GenerationConfig FromDirectory(string directory)
    {
        string path = Path.Combine(directory, "generation_config.json");
        return File.Exists(path) ? FromJson(File.ReadAllText(path), path) : new GenerationConfig();
    }

    /// <summary>Reads HF's generation_config.json fields; absent ones keep HF's defaults, unknown ones are ignored as HF ignores them.</summary>
    public static GenerationConfig FromJson(string json, string source = "generation_config.json")
    {
        var r = JsonFieldReader.Parse(json, source);
        var d = new GenerationConfig();
        return new GenerationConfig
        {
            MaxNewTokens = r.Int("max_new_tokens"),
            MaxLength = r.Int("max_length") ?? d.MaxLength,
            MinLength = r.Int("min_length") ?? d.MinLength,
            MinNewTokens = r.Int("min_new_tokens"),
            DoSample = r.Bool("do_sample") ?? d.DoSample,
            Temperature = r.Double("temperature") ?? d.Temperature,
            TopK = r.Int("top_k") ?? d.TopK,
            TopP = r.Double("top_p") ?? d.TopP,
            MinP = r.Double("min_p"),
            TypicalP = r.Double("typical_p") ?? d.TypicalP,
            RepetitionPenalty = r.Double("repetition_penalty") ?? d.RepetitionPenalty,
            NoRepeatNgramSize = r.Int("no_repeat_ngram_size") ?? d.NoRepeatNgramSize,
            BadWordsIds = r.IntLists("bad_words_ids"),
            NumReturnSequences = r.Int("num_return_sequences") ?? d.NumReturnSequences,
            NumBeams = r.Int("num_beams") ?? d.NumBeams,
            NumBeamGroups = r.Int("num_beam_groups") ?? d.NumBeamGroups,
            DiversityPenalty = r.Double("diversity_penalty") ?? d.DiversityPenalty,
            LengthPenalty = r.Double("length_penalty") ?? d.LengthPenalty,
            EarlyStopping = r.BoolOrString("early_stopping") is { } early
                ? ParseEarlyStopping(early) ?? throw new CheckpointException($"{source}: early_stopping: '{early}' is not true, false or \"never\"")
                : EarlyStopping.False,
            EosTokenIds = r.Has("eos_token_id") ? r.IntOrList("eos_token_id") : null,
            PadTokenId = r.Int("pad_token_id"),
            BosTokenId = r.Int("bos_token_id"),
            StopStrings = r.StringOrList("stop_strings"),
            SuppressTokens = r.Has("suppress_tokens") ? r.IntOrList("suppress_tokens") : null,
            BeginSuppressTokens = r.Has("begin_suppress_tokens") ? r.IntOrList("begin_suppress_tokens") : null,
            ForcedBosTokenId = r.Int("forced_bos_token_id"),
            ForcedEosTokenId = r.Int("forced_eos_token_id"),
            EpsilonCutoff = r.Double("epsilon_cutoff") ?? 0,
            EtaCutoff = r.Double("eta_cutoff") ?? 0,
            RenormalizeLogits = r.Bool("renormalize_logits") ?? false,
        };
    }

    public void Validate(int vocabSize)
    {
        static void Require(bool ok, string parameter, string message)
        {
            if (!ok) throw new ArgumentException($"{parameter}: {message}", parameter);
        }
        Require(MaxNewTokens is null or >= 0, "max_new_tokens", $"must be ≥ 0, got {MaxNewTokens}");
        Require(MaxLength >= 0, "max_length", $"must be ≥ 0, got {MaxLength}");
        Require(MinLength >= 0, "min_length", $"must be ≥ 0, got {MinLength}");
        Require(MinNewTokens is null or >= 0, "min_new_tokens", $"must be ≥ 0, got {MinNewTokens}");
        Require(MaxNewTokens is null || MinNewTokens is null || MinNewTokens <= MaxNewTokens, "min_new_tokens",
            $"({MinNewTokens}) is larger than max_new_tokens ({MaxNewTokens})");
        Require(double.IsFinite(Temperature) && Temperature > 0, "temperature", $"must be a positive number, got {Temperature}");
        Require(TopK >= 0, "top_k", $"must be ≥ 0, got {TopK}");
        Require(TopP is > 0 and <= 1, "top_p", $"must be in (0, 1], got {TopP}");
        Require(MinP is null or (>= 0 and <= 1), "min_p", $"must be in [0, 1], got {MinP}");
        Require(TypicalP is > 0 and <= 1, "typical_p", $"must be in (0, 1], got {TypicalP}");
        Require(double.IsFinite(RepetitionPenalty) && RepetitionPenalty > 0, "repetition_penalty", $"must be a positive number, got {RepetitionPenalty}");
        Require(PresencePenalty is >= -2 and <= 2, "presence_penalty", $"must be between -2 and 2, got {PresencePenalty}");
        Require(FrequencyPenalty is >= -2 and <= 2, "frequency_penalty", $"must be between -2 and 2, got {FrequencyPenalty}");
        Require(NoRepeatNgramSize >= 0, "no_repeat_ngram_size", $"must be ≥ 0, got {NoRepeatNgramSize}");
        Require(NumReturnSequences >= 1, "num_return_sequences", $"must be ≥ 1, got {NumReturnSequences}");
        Require(NumBeams >= 1, "num_beams", $"must be ≥ 1, got {NumBeams}");
        Require(NumBeamGroups >= 1 && NumBeams % NumBeamGroups == 0, "num_beam_groups",
            $"({NumBeamGroups}) must divide num_beams ({NumBeams})");
        Require(NumBeamGroups == 1 || !DoSample, "num_beam_groups", "diverse (group) beam search cannot be combined with do_sample");
        Require(double.IsFinite(DiversityPenalty) && DiversityPenalty >= 0, "diversity_penalty", $"must be ≥ 0, got {DiversityPenalty}");
        Require(DiversityPenalty == 0 || NumBeamGroups > 1, "diversity_penalty", "only applies to diverse beam search (num_beam_groups > 1)");
        Require(double.IsFinite(LengthPenalty), "length_penalty", "must be a finite number");
        Require(IsBeamSearch || DoSample || NumReturnSequences == 1, "num_return_sequences",
            "greedy search returns one sequence per prompt; use do_sample or num_beams > 1 for more");
        Require(!IsBeamSearch || NumReturnSequences <= NumBeams, "num_return_sequences",
            $"({NumReturnSequences}) must not exceed num_beams ({NumBeams})");
        Require(Logprobs is null or (>= 0 and <= 20), "logprobs", $"must be between 0 and 20, got {Logprobs}");
        void InVocabulary(string parameter, int? id) =>
            Require(id is null || (id >= 0 && id < vocabSize), parameter, $"{id} is outside the vocabulary (0..{vocabSize - 1})");
        InVocabulary("pad_token_id", PadTokenId);
        InVocabulary("bos_token_id", BosTokenId);
        InVocabulary("forced_bos_token_id", ForcedBosTokenId);
        InVocabulary("forced_eos_token_id", ForcedEosTokenId);
        foreach (var id in EosTokenIds ?? []) InVocabulary("eos_token_id", id);
        foreach (var id in SuppressTokens ?? []) InVocabulary("suppress_tokens", id);
        foreach (var id in BeginSuppressTokens ?? []) InVocabulary("begin_suppress_tokens", id);
        foreach (var word in BadWordsIds ?? [])
        {
            Require(word.Count > 0, "bad_words_ids", "contains an empty sequence");
            foreach (var id in word) InVocabulary("bad_words_ids", id);
        }
        if (Constraint is { } constraint)
        {
            try { constraint.Compile(); }
            catch (GrammarException e) { Require(false, constraint.Parameter, e.Message); }
        }
        foreach (var stop in StopStrings ?? []) Require(!string.IsNullOrEmpty(stop), "stop_strings", "contains an empty string");
        Require(EpsilonCutoff is >= 0 and < 1, "epsilon_cutoff", $"must be in [0, 1), got {EpsilonCutoff}");
        Require(EtaCutoff is >= 0 and < 1, "eta_cutoff", $"must be in [0, 1), got {EtaCutoff}");
        foreach (var (sequence, bias) in SequenceBias ?? [])
        {
            Require(sequence.Count > 0 && (double.IsFinite(bias) || double.IsNegativeInfinity(bias)), "sequence_bias", "needs non-empty sequences and numeric biases");
            foreach (var id in sequence) InVocabulary("sequence_bias", id);
        }
    }
}
