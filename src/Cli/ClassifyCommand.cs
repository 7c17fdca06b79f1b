using System.CommandLine;
using Gpt2Orleans.Inference.Classification;
using Gpt2Orleans.Inference.Model;

namespace Gpt2Orleans.Cli;

/// <summary><c>gpt2o classify</c> and <c>gpt2o classify-tokens</c>: the sequence- and token-classification heads.</summary>
public static class ClassifyCommand
{
    private static readonly Option<string[]> Text = new("--text") { Description = "Text to classify (repeat for a batch)", Required = true };

    private static Command Create(string name, string description, Func<ParseResult, int> action)
    {
        var command = new Command(name, description);
        CommonOptions.AddTo(command);
        command.Add(Text);
        command.SetAction(action);
        return command;
    }

    public static Command CreateSequence() =>
        Create("classify", "Classify texts with a sequence-classification checkpoint (GPT2ForSequenceClassification)", parse =>
        {
            using var loaded = ModelLoader.Load(parse, Gpt2ForSequenceClassification.FromPretrained);
            var results = new TextClassifier(loaded.Tokenizer).ClassifySequences(loaded.Model, parse.GetValue(Text)!);
            if (parse.GetValue(CommonOptions.Json))
                JsonOutput.Write(new { logits = results.Select(r => r.Logits), scores = results.Select(r => r.Scores), labels = results.Select(r => r.Label) });
            else
                foreach (var (result, text) in results.Zip(parse.GetValue(Text)!))
                    Console.WriteLine($"{result.Label} ({result.Scores.Max():P1})  {text}");
            return 0;
        });

    public static Command CreateTokens() =>
        Create("classify-tokens", "Label every token with a token-classification checkpoint (GPT2ForTokenClassification)", parse =>
        {
            using var loaded = ModelLoader.Load(parse, Gpt2ForTokenClassification.FromPretrained);
            var results = new TextClassifier(loaded.Tokenizer).ClassifyTokens(loaded.Model, parse.GetValue(Text)!);
            if (parse.GetValue(CommonOptions.Json))
                JsonOutput.Write(new
                {
                    ids = results.Select(r => r.Select(t => t.TokenId)),
                    tokens = results.Select(r => r.Select(t => t.Token)),
                    logits = results.Select(r => r.Select(t => t.Logits)),
                    labels = results.Select(r => r.Select(t => t.Label)),
                });
            else
                foreach (var tokens in results)
                    Console.WriteLine(string.Join(" ", tokens.Select(t => $"{t.Token.Replace("\n", "\\n")}/{t.Label}")));
            return 0;
        });
}
