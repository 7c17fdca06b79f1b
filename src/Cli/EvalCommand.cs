using System.CommandLine;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Scoring;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o eval</c>: a language model's loss and perplexity over a file's documents (joined as training joins
/// them), with HF's sliding-window method; or, with <c>--baseline unigram</c>, a unigram model of a training file
/// over the same tokens, the floor a trained model must clear.
/// </summary>
public static class EvalCommand
{
    private static readonly Option<string> File = new("--file") { Description = "Documents to evaluate: .jsonl (one {\"text\": …} per line) or .txt (one document)", Required = true };
    private static readonly Option<int?> MaxLength = new("--max-length") { Description = "Tokens per window (default: the model's n_positions)" };
    private static readonly Option<int?> Stride = new("--stride") { Description = "Tokens each window advances (default: max-length, disjoint windows)" };
    private static readonly Option<string?> Baseline = new("--baseline") { Description = "unigram: evaluate a unigram model of --train-file instead of a language model" };
    private static readonly Option<string?> TrainFile = new("--train-file") { Description = "The training documents the unigram baseline counts" };

    public static Command Create()
    {
        var command = new Command("eval", "Loss and perplexity over a file (HF's sliding window), or a unigram baseline's");
        CommonOptions.AddTo(command);
        foreach (var option in new Option[] { File, MaxLength, Stride, Baseline, TrainFile }) command.Add(option);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var documents = TextDocuments.Read(parse.GetValue(File)!);
        Perplexity result;
        string description;
        if (parse.GetValue(Baseline) is { } baseline)
        {
            if (baseline != "unigram") throw new ArgumentException($"--baseline is '{baseline}': the one baseline is unigram", "baseline");
            string train = parse.GetValue(TrainFile) ?? throw new ArgumentException("--baseline unigram needs --train-file, the documents it counts", "train-file");
            var tokenizer = Gpt2Tokenizer.Default;
            result = UnigramBaseline.Evaluate(TextDocuments.Join(TextDocuments.Read(train), tokenizer), TextDocuments.Join(documents, tokenizer), tokenizer.VocabSize);
            description = $"unigram model of {train}";
        }
        else
        {
            using var loaded = ModelLoader.LoadLanguageModel(parse);
            int positions = loaded.Model.Config.NPositions;
            int maxLength = parse.GetValue(MaxLength) ?? positions;
            if (maxLength < 2 || maxLength > positions) throw new ArgumentException($"--max-length must be between 2 and the model's n_positions ({positions}), got {maxLength}", "max-length");
            int stride = parse.GetValue(Stride) ?? maxLength;
            var ids = TextDocuments.Join(documents, loaded.Tokenizer);
            using var engine = LocalEngine.ForScoring(loaded.Model, loaded.Tokenizer, maxLength);
            result = SlidingWindowPerplexity.ComputeAsync(ids, maxLength, stride,
                async window => (await engine.ScoreTextAsync(window)).TokenLogprobs).GetAwaiter().GetResult();
            description = loaded.Description;
        }
        if (parse.GetValue(CommonOptions.Json))
        {
            JsonOutput.Write(new { loss = result.Loss, perplexity = result.Value, tokens = result.Tokens });
            return 0;
        }
        Console.Error.WriteLine($"[{description}]");
        Console.WriteLine($"loss {result.Loss:F4}  perplexity {result.Value:F2}  over {result.Tokens} tokens");
        return 0;
    }
}
