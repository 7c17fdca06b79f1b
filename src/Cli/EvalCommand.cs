using System.CommandLine;
using System.Text.Json;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Scoring;
using Gpt2Orleans.Inference.Tokenization;
using Gpt2Orleans.Inference.Training;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o eval</c>, by what the model is: a language model's loss and perplexity over a file's documents (joined as
/// training joins them) with HF's sliding window, or its corpus BLEU against references (<c>--bleu</c>); a classifier's
/// accuracy and per-label F1 (beside the majority-class baseline of <c>--train-file</c>); or, with
/// <c>--baseline unigram</c>, a unigram model of a training file over the same tokens, the floor a trained model must clear.
/// </summary>
public static class EvalCommand
{
    private static readonly Option<string> File = new("--file")
    {
        Description = "What to evaluate: {\"text\"} lines (LM), {\"text\",\"label\"} (sequence classifier), {\"tokens\",\"labels\"} (token classifier), " +
                      "{\"prompt\",\"reference\"|\"references\"} (--bleu); or .txt, one document",
        Required = true,
    };
    private static readonly Option<int?> MaxLength = new("--max-length") { Description = "Tokens per window (default: the model's n_positions)" };
    private static readonly Option<int?> Stride = new("--stride") { Description = "Tokens each window advances (default: max-length, disjoint windows)" };
    private static readonly Option<string?> Baseline = new("--baseline") { Description = "unigram: evaluate a unigram model of --train-file instead of a language model" };
    private static readonly Option<string?> TrainFile = new("--train-file") { Description = "The training file: what the unigram baseline counts, or whose majority label a classifier must beat" };
    private static readonly Option<bool> Bleu = new("--bleu") { Description = "Generate a greedy continuation of each prompt and score it with corpus BLEU against its references" };
    private static readonly Option<int> MaxNewTokens = new("--max-new-tokens") { Description = "Tokens generated per prompt for --bleu", DefaultValueFactory = _ => 32 };
    private static readonly Option<int> BatchSize = new("--batch-size") { Description = "Examples per classification batch", DefaultValueFactory = _ => 16 };

    public static Command Create()
    {
        var command = new Command("eval", "Perplexity (HF's sliding window), BLEU, classification accuracy and F1, or a unigram baseline");
        CommonOptions.AddTo(command);
        CommonOptions.AddEngineTo(command);
        foreach (var option in new Option[] { File, MaxLength, Stride, Baseline, TrainFile, Bleu, MaxNewTokens, BatchSize }) command.Add(option);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        if (parse.GetValue(Baseline) is { } baseline) return Report(parse, Unigram(parse, baseline));
        if (parse.GetValue(CommonOptions.Model) is { } spec)
        {
            string folder = ModelLoader.ResolveFolder(spec, parse.GetValue(CommonOptions.Json));
            var architectures = Gpt2Config.FromFile(Path.Combine(folder, "config.json")).Architectures;
            if (architectures.Contains("GPT2ForSequenceClassification"))
                return Classification(parse, new SequenceClassificationTask(), Gpt2ForSequenceClassification.FromPretrained,
                    (path, tokenizer, labels, length) => SequenceClassificationTask.Examples(LabeledText.Read(path), tokenizer, labels, length),
                    path => LabeledText.Read(path).Select(t => t.Label));
            if (architectures.Contains("GPT2ForTokenClassification"))
                return Classification(parse, new TokenClassificationTask(), Gpt2ForTokenClassification.FromPretrained,
                    (path, tokenizer, labels, length) => TokenClassificationTask.Examples(TaggedWords.Read(path), tokenizer, labels, length),
                    path => TaggedWords.Read(path).SelectMany(t => t.Labels));
        }
        if (parse.GetValue(Bleu)) return BleuScore(parse);
        return Report(parse, Perplexity(parse));
    }

    private static (Perplexity Result, string Description) Unigram(ParseResult parse, string baseline)
    {
        if (baseline != "unigram") throw new ArgumentException($"--baseline is '{baseline}': the one baseline is unigram", "baseline");
        string train = parse.GetValue(TrainFile) ?? throw new ArgumentException("--baseline unigram needs --train-file, the documents it counts", "train-file");
        var tokenizer = Gpt2Tokenizer.Default;
        var documents = TextDocuments.Read(parse.GetValue(File)!);
        return (UnigramBaseline.Evaluate(TextDocuments.Join(TextDocuments.Read(train), tokenizer), TextDocuments.Join(documents, tokenizer), tokenizer.VocabSize),
            $"unigram model of {train}");
    }

    private static (Perplexity Result, string Description) Perplexity(ParseResult parse)
    {
        var documents = TextDocuments.Read(parse.GetValue(File)!);
        using var loaded = ModelLoader.LoadLanguageModel(parse);
        int positions = loaded.Model.Config.NPositions;
        int maxLength = parse.GetValue(MaxLength) ?? positions;
        if (maxLength < 2 || maxLength > positions) throw new ArgumentException($"--max-length must be between 2 and the model's n_positions ({positions}), got {maxLength}", "max-length");
        int stride = parse.GetValue(Stride) ?? maxLength;
        var ids = TextDocuments.Join(documents, loaded.Tokenizer);
        using var engine = LocalEngine.ForScoring(loaded.Model, loaded.Tokenizer, maxLength, CommonOptions.KvDTypeOf(parse));
        var result = SlidingWindowPerplexity.ComputeAsync(ids, maxLength, stride,
            async window => (await engine.ScoreTextAsync(window)).TokenLogprobs).GetAwaiter().GetResult();
        return (result, loaded.Description);
    }

    private static int Report(ParseResult parse, (Perplexity Result, string Description) evaluation)
    {
        var (result, description) = evaluation;
        if (parse.GetValue(CommonOptions.Json))
        {
            JsonOutput.Write(new { loss = result.Loss, perplexity = result.Value, tokens = result.Tokens });
            return 0;
        }
        Console.Error.WriteLine($"[{description}]");
        Console.WriteLine($"loss {result.Loss:F4}  perplexity {result.Value:F2}  over {result.Tokens} tokens");
        return 0;
    }

    private static int Classification<T>(ParseResult parse, TrainingTask task, Func<string, ModelLoadOptions, T> fromPretrained,
        Func<string, Gpt2Tokenizer, LabelSet, int, IReadOnlyList<TrainingExample>> examples, Func<string, IEnumerable<string>> labelsOf) where T : Gpt2PreTrainedModel
    {
        int batchSize = parse.GetValue(BatchSize);
        if (batchSize < 1) throw new ArgumentException($"--batch-size must be at least 1, got {batchSize}", "batch-size");
        using var loaded = ModelLoader.Load(parse, fromPretrained);
        var config = loaded.Model.Config;
        var labels = LabelSet.Of(config);
        int length = parse.GetValue(MaxLength) ?? Math.Min(config.NPositions, 1024);
        var data = examples(parse.GetValue(File)!, loaded.Tokenizer, labels, length);
        var metrics = task.Evaluate(loaded.Model, data, batchSize);
        double? majority = parse.GetValue(TrainFile) is { } train
            ? ClassificationMetrics.MajorityBaseline(labelsOf(train).Select(labels.Id).ToList(),
                data.SelectMany(e => e.Labels).Where(l => l != Losses.IgnoreIndex).Select(l => (int)l).ToList()) // the labels the accuracy counts
            : null;
        var f1 = labels.Names.Where(n => metrics.ContainsKey($"eval_f1_{n}")).ToDictionary(n => n, n => metrics[$"eval_f1_{n}"]);
        if (parse.GetValue(CommonOptions.Json))
        {
            JsonOutput.Write(new { loss = metrics["eval_loss"], accuracy = metrics["eval_accuracy"], macro_f1 = metrics["eval_macro_f1"], f1, majority_baseline = majority, examples = data.Count });
            return 0;
        }
        Console.Error.WriteLine($"[{loaded.Description}]");
        Console.WriteLine($"accuracy {metrics["eval_accuracy"]:F4}  macro F1 {metrics["eval_macro_f1"]:F4}  loss {metrics["eval_loss"]:F4}  over {data.Count} examples" +
                          (majority is { } m ? $"  (majority-class baseline {m:F4})" : ""));
        foreach (var (label, score) in f1) Console.WriteLine($"  F1 {label}: {score:F4}");
        return 0;
    }

    /// <summary>A BLEU file's line: a prompt and one or more reference continuations.</summary>
    private sealed record BleuCase(string Prompt, IReadOnlyList<string> References);

    private static int BleuScore(ParseResult parse)
    {
        var cases = DataFile.ReadJsonLines(parse.GetValue(File)!, record =>
        {
            string prompt = DataFile.String(record, "prompt", "a string \"prompt\" and a \"reference\" string or \"references\" array");
            if (record.TryGetProperty("reference", out var one) && one.ValueKind == JsonValueKind.String) return new BleuCase(prompt, [one.GetString()!]);
            if (record.TryGetProperty("references", out var many) && many.ValueKind == JsonValueKind.Array && many.GetArrayLength() > 0
                && many.EnumerateArray().All(r => r.ValueKind == JsonValueKind.String))
                return new BleuCase(prompt, many.EnumerateArray().Select(r => r.GetString()!).ToList());
            throw new FormatException("has no \"reference\" string or non-empty \"references\" array of strings");
        });
        int maxNewTokens = parse.GetValue(MaxNewTokens);
        if (maxNewTokens is < 1 or > 4096) throw new ArgumentException($"--max-new-tokens must be between 1 and 4096, got {maxNewTokens}", "max-new-tokens");
        using var loaded = ModelLoader.LoadLanguageModel(parse);
        var prompts = cases.Select(c => (IReadOnlyList<int>)loaded.Tokenizer.Encode(c.Prompt)).ToList();
        var config = GenerationConfig.FromDirectory(loaded.Folder ?? "") with { MaxNewTokens = maxNewTokens, DoSample = false, NumBeams = 1, NumReturnSequences = 1 };
        using var engine = LocalEngine.For(loaded.Model, loaded.Tokenizer, prompts, config, CommonOptions.KvDTypeOf(parse));
        var generated = engine.GenerateAsync(prompts, config).GetAwaiter().GetResult();
        var score = CorpusBleu.Compute(
            cases.Select(c => (IReadOnlyList<IReadOnlyList<string>>)c.References.Select(CorpusBleu.Tokenize).ToList()).ToList(),
            generated.Select(g => CorpusBleu.Tokenize(g.Text)).ToList());
        if (parse.GetValue(CommonOptions.Json))
        {
            JsonOutput.Write(new { bleu = score.Score, precisions = score.Precisions, brevity_penalty = score.BrevityPenalty,
                hypothesis_length = score.HypothesisLength, reference_length = score.ReferenceLength, examples = cases.Count });
            return 0;
        }
        Console.Error.WriteLine($"[{loaded.Description}]");
        Console.WriteLine($"BLEU {100 * score.Score:F2}  precisions {string.Join("/", score.Precisions.Select(p => $"{100 * p:F1}"))}  " +
                          $"brevity penalty {score.BrevityPenalty:F3}  ({score.HypothesisLength} hypothesis, {score.ReferenceLength} reference tokens, {cases.Count} prompts)");
        return 0;
    }
}
