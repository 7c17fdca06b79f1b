using System.CommandLine;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Cli;

/// <summary><c>gpt2o generate</c>: HF's <c>generate</c> arguments, in kebab case.</summary>
public static class GenerateCommand
{
    private static readonly Option<string[]> Prompt = new("--prompt") { Description = "Prompt text (repeat for a batch)", Required = true };
    private static readonly Option<int?> MaxNewTokens = new("--max-new-tokens") { Description = "New tokens to generate (default 20 − prompt length, as HF's max_length)" };
    private static readonly Option<int?> MaxLength = new("--max-length") { Description = "Prompt + new tokens (HF's max_length, default 20)" };
    private static readonly Option<int?> MinLength = new("--min-length") { Description = "Minimum prompt + new tokens before eos is allowed" };
    private static readonly Option<int?> MinNewTokens = new("--min-new-tokens") { Description = "Minimum new tokens before eos is allowed" };
    private static readonly Option<bool> DoSample = new("--do-sample") { Description = "Sample instead of greedy search" };
    private static readonly Option<double?> Temperature = new("--temperature");
    private static readonly Option<int?> TopK = new("--top-k") { Description = "Keep the k most likely tokens (HF default 50 when sampling; 0 disables)" };
    private static readonly Option<double?> TopP = new("--top-p");
    private static readonly Option<double?> MinP = new("--min-p");
    private static readonly Option<double?> TypicalP = new("--typical-p");
    private static readonly Option<double?> RepetitionPenalty = new("--repetition-penalty");
    private static readonly Option<int?> NoRepeatNgramSize = new("--no-repeat-ngram-size");
    private static readonly Option<string[]> BadWordsIds = new("--bad-words-ids") { Description = "A banned token sequence as comma-separated ids (repeatable)" };
    private static readonly Option<int?> NumReturnSequences = new("--num-return-sequences");
    private static readonly Option<int?> NumBeams = new("--num-beams");
    private static readonly Option<int?> NumBeamGroups = new("--num-beam-groups");
    private static readonly Option<double?> DiversityPenalty = new("--diversity-penalty");
    private static readonly Option<double?> LengthPenalty = new("--length-penalty");
    private static readonly Option<string?> EarlyStoppingOption = new("--early-stopping") { Description = "true, false or never" };
    private static readonly Option<int[]> EosTokenId = new("--eos-token-id") { Description = "Token id(s) that end a sequence (default: the model's)" };
    private static readonly Option<int?> PadTokenId = new("--pad-token-id");
    private static readonly Option<int?> BosTokenId = new("--bos-token-id");
    private static readonly Option<string[]> StopStrings = new("--stop-strings") { Description = "Stop when the text contains this string (repeatable)" };
    private static readonly Option<long?> Seed = new("--seed");
    private static readonly Option<int?> Logprobs = new("--logprobs") { Description = "Also report the N most likely tokens at each step (0–20)" };
    private static readonly Option<string[]> SequenceBias = new("--sequence-bias") { Description = "IDS=BIAS: add BIAS to the last of the comma-separated IDS when the rest precede it (repeatable)" };
    private static readonly Option<int[]> SuppressTokens = new("--suppress-tokens") { Description = "Token ids never generated" };
    private static readonly Option<int[]> BeginSuppressTokens = new("--begin-suppress-tokens") { Description = "Token ids not allowed as the first new token" };
    private static readonly Option<int?> ForcedBosTokenId = new("--forced-bos-token-id");
    private static readonly Option<int?> ForcedEosTokenId = new("--forced-eos-token-id") { Description = "Token forced as the last one when max length is reached" };
    private static readonly Option<double?> EpsilonCutoff = new("--epsilon-cutoff");
    private static readonly Option<double?> EtaCutoff = new("--eta-cutoff");
    private static readonly Option<bool> RenormalizeLogits = new("--renormalize-logits");
    private static readonly Option<bool> TruncatePrompt = new("--truncate-prompt") { Description = "Drop the oldest prompt tokens instead of failing when the context is too short" };

    public static Command Create()
    {
        var command = new Command("generate", "Generate text from one or more prompts");
        CommonOptions.AddTo(command);
        CommonOptions.AddEngineTo(command);
        foreach (var option in new Option[] { Prompt, MaxNewTokens, MaxLength, MinLength, MinNewTokens, DoSample, Temperature, TopK, TopP, MinP,
                     TypicalP, RepetitionPenalty, NoRepeatNgramSize, BadWordsIds, NumReturnSequences, NumBeams, NumBeamGroups, DiversityPenalty,
                     LengthPenalty, EarlyStoppingOption, EosTokenId, PadTokenId, BosTokenId, StopStrings, Seed, Logprobs, TruncatePrompt,
                     SequenceBias, SuppressTokens, BeginSuppressTokens, ForcedBosTokenId, ForcedEosTokenId, EpsilonCutoff, EtaCutoff, RenormalizeLogits })
            command.Add(option);
        command.SetAction(Run);
        return command;
    }

    /// <summary>The options given on the command line over <paramref name="defaults"/> (the model's generation_config.json).</summary>
    public static GenerationConfig ToConfig(ParseResult p, GenerationConfig defaults) => new GenerationOverrides
    {
        MaxNewTokens = p.GetValue(MaxNewTokens),
        MaxLength = p.GetValue(MaxLength),
        MinLength = p.GetValue(MinLength),
        MinNewTokens = p.GetValue(MinNewTokens),
        DoSample = p.GetValue(DoSample) ? true : null,
        Temperature = p.GetValue(Temperature),
        TopK = p.GetValue(TopK),
        TopP = p.GetValue(TopP),
        MinP = p.GetValue(MinP),
        TypicalP = p.GetValue(TypicalP),
        RepetitionPenalty = p.GetValue(RepetitionPenalty),
        NoRepeatNgramSize = p.GetValue(NoRepeatNgramSize),
        BadWordsIds = p.GetValue(BadWordsIds) is { Length: > 0 } words ? words.Select(ParseIds).ToArray() : null,
        NumReturnSequences = p.GetValue(NumReturnSequences),
        NumBeams = p.GetValue(NumBeams),
        NumBeamGroups = p.GetValue(NumBeamGroups),
        DiversityPenalty = p.GetValue(DiversityPenalty),
        LengthPenalty = p.GetValue(LengthPenalty),
        EarlyStopping = p.GetValue(EarlyStoppingOption) is { } early
            ? GenerationConfig.ParseEarlyStopping(early) ?? throw new ArgumentException($"--early-stopping: '{early}' is not one of true, false, never")
            : null,
        EosTokenIds = p.GetValue(EosTokenId) is { Length: > 0 } eos ? eos : null,
        PadTokenId = p.GetValue(PadTokenId),
        BosTokenId = p.GetValue(BosTokenId),
        StopStrings = p.GetValue(StopStrings) is { Length: > 0 } stops ? stops : null,
        Seed = p.GetValue(Seed),
        Logprobs = p.GetValue(Logprobs) ?? 0,
        TruncatePrompt = p.GetValue(TruncatePrompt),
        SequenceBias = p.GetValue(SequenceBias) is { Length: > 0 } biases ? biases.Select(ParseBias).ToArray() : null,
        SuppressTokens = p.GetValue(SuppressTokens) is { Length: > 0 } suppress ? suppress : null,
        BeginSuppressTokens = p.GetValue(BeginSuppressTokens) is { Length: > 0 } begin ? begin : null,
        ForcedBosTokenId = p.GetValue(ForcedBosTokenId),
        ForcedEosTokenId = p.GetValue(ForcedEosTokenId),
        EpsilonCutoff = p.GetValue(EpsilonCutoff),
        EtaCutoff = p.GetValue(EtaCutoff),
        RenormalizeLogits = p.GetValue(RenormalizeLogits) ? true : null,
    }.ApplyTo(defaults);

    private static (IReadOnlyList<int>, double) ParseBias(string text)
    {
        int split = text.LastIndexOf('=');
        if (split <= 0 || !double.TryParse(text[(split + 1)..], System.Globalization.CultureInfo.InvariantCulture, out var bias))
            throw new ArgumentException($"--sequence-bias: '{text}' is not IDS=BIAS (e.g. 50256=-5 or 11,198=2.5)");
        return (ParseIds(text[..split]), bias);
    }

    private static IReadOnlyList<int> ParseIds(string text) =>
        text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.TryParse(s, out var id) ? id : throw new ArgumentException($"'{s}' is not a token id")).ToArray();

    private static int Run(ParseResult parse)
    {
        var prompts = parse.GetValue(Prompt)!;
        bool json = parse.GetValue(CommonOptions.Json);
        using var loaded = ModelLoader.LoadLanguageModel(parse);
        var config = ToConfig(parse, loaded.Folder is { } folder ? GenerationConfig.FromDirectory(folder) : new GenerationConfig());
        if (!json) Console.Error.WriteLine($"[{loaded.Description}]");
        var ids = prompts.Select(p => loaded.Tokenizer.Encode(p)).ToList();
        using var engine = LocalEngine.For(loaded.Model, loaded.Tokenizer, ids, config, CommonOptions.KvDTypeOf(parse));

        bool stream = !json && prompts.Length == 1 && config.NumReturnSequences == 1 && !config.IsBeamSearch;
        bool echoed = false;
        var sequences = engine.GenerateAsync(ids, config, onEvent: stream ? (_, e) =>
        {
            if (!echoed) { Console.Write(prompts[0]); echoed = true; } // only once generation has started: errors come first
            Console.Write(e.TextDelta);
        } : null).GetAwaiter().GetResult();

        if (json)
        {
            JsonOutput.Write(new
            {
                model = loaded.Description,
                sequences = sequences.Select(s => new
                {
                    prompt_index = s.PromptIndex,
                    ids = s.Ids,
                    text = s.Text,
                    logprobs = s.Logprobs?.Select(l => new
                    {
                        token_id = l.TokenId,
                        token = loaded.Tokenizer.Decode([l.TokenId]),
                        logprob = l.Logprob,
                        top_logprobs = l.Top.Select(t => new { token_id = t.TokenId, token = loaded.Tokenizer.Decode([t.TokenId]), logprob = t.Logprob }),
                    }),
                    finish_reason = s.FinishReason.Name(),
                    stop_reason = StopReason(s),
                    score = s.Score,
                }),
            });
            return 0;
        }
        if (stream) { Console.WriteLine(echoed ? "" : prompts[0]); return 0; }
        foreach (var s in sequences)
        {
            Console.WriteLine($"--- prompt {s.PromptIndex}{(s.Score is { } score ? $", score {score:F4}" : "")} ({s.FinishReason.Name()}{(StopReason(s) is { } why ? $": {why}" : "")})");
            Console.WriteLine(prompts[s.PromptIndex] + s.Text);
        }
        return 0;
    }

    /// <summary>vLLM's stop_reason: the stop string that ended the sequence, or the eos token id; null at the length limit.</summary>
    private static object? StopReason(GeneratedSequence s) => s.FinishReason switch
    {
        FinishReason.StopString => s.StopString,
        FinishReason.EndOfSequence => s.Ids[^1],
        _ => null,
    };
}
