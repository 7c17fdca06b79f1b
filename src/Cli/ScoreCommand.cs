using System.CommandLine;
using Gpt2Orleans.Inference.Engine;

namespace Gpt2Orleans.Cli;

/// <summary><c>gpt2o score</c>: each token's log-probability given its prefix, the loss and the perplexity.</summary>
public static class ScoreCommand
{
    private static readonly Option<string> Text = new("--text") { Description = "The text to score", Required = true };

    public static Command Create()
    {
        var command = new Command("score", "Log-probability of each token of a text, its loss and perplexity");
        CommonOptions.AddTo(command);
        CommonOptions.AddEngineTo(command);
        command.Add(Text);
        command.SetAction(parse =>
        {
            using var loaded = ModelLoader.LoadLanguageModel(parse);
            var ids = loaded.Tokenizer.Encode(parse.GetValue(Text)!);
            using var engine = LocalEngine.ForScoring(loaded.Model, loaded.Tokenizer, ids.Count, CommonOptions.KvDTypeOf(parse));
            var score = engine.ScoreTextAsync(ids).GetAwaiter().GetResult();
            if (parse.GetValue(CommonOptions.Json))
            {
                JsonOutput.Write(new { ids = score.Ids, token_logprobs = score.TokenLogprobs, loss = score.Loss, perplexity = score.Perplexity });
                return 0;
            }
            Console.Error.WriteLine($"[{loaded.Description}]");
            for (int i = 0; i < score.Ids.Count; i++)
                Console.WriteLine($"{score.Ids[i],7} {Quote(loaded.Tokenizer.Decode([score.Ids[i]])),-24} {(score.TokenLogprobs[i] is { } lp ? lp.ToString("F4") : "")}");
            Console.WriteLine($"loss {score.Loss:F4}  perplexity {score.Perplexity:F2}");
            return 0;
        });
        return command;
    }

    private static string Quote(string token) => "'" + token.Replace("\n", "\\n") + "'";
}
