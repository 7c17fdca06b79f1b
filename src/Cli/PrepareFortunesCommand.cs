using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Gpt2Orleans.Inference.Data;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o prepare-fortunes</c>: Debian's fortunes corpus as training files. Every quotation goes to train.jsonl or
/// validation.jsonl (a seeded split), and the quotations of the label files to classify-train.jsonl /
/// classify-validation.jsonl with their file as the label, on the same side of the split (a classifier fine-tuned
/// from the language model never sees a validation quotation).
/// </summary>
public static class PrepareFortunesCommand
{
    private static readonly Option<string> OutputDir = new("--output-dir") { Description = "Folder for the four .jsonl files", Required = true };
    private static readonly Option<string> FortunesDir = new("--fortunes-dir") { Description = "The corpus", DefaultValueFactory = _ => FortuneFiles.DefaultDirectory };
    private static readonly Option<double> ValidationSplit = new("--validation-split") { Description = "Fraction of quotations held out", DefaultValueFactory = _ => 0.05 };
    private static readonly Option<long> Seed = new("--seed") { DefaultValueFactory = _ => 42 };
    private static readonly Option<string> Labels = new("--labels") { Description = "Fortune files (topics) for the classification set", DefaultValueFactory = _ => "computers,food,law,love,science,sports" };

    public static Command Create()
    {
        var command = new Command("prepare-fortunes", "Write Debian's fortunes corpus as JSON Lines for gpt2o train (LM and topic classification)");
        foreach (var option in new Option[] { OutputDir, FortunesDir, ValidationSplit, Seed, Labels, CommonOptions.Json }) command.Add(option);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        string directory = parse.GetValue(FortunesDir)!, output = parse.GetValue(OutputDir)!;
        var labels = parse.GetValue(Labels)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        if (labels.Count < 2) throw new ArgumentException("--labels needs at least two fortune files", "labels");
        FortuneFiles.RequireTopics(directory, labels);
        var fortunes = FortuneFiles.Read(directory);
        var (train, validation) = HoldoutSplit.Split(fortunes, parse.GetValue(ValidationSplit), parse.GetValue(Seed));
        if (File.Exists(output)) throw new ArgumentException($"--output-dir '{output}' is a file", "output-dir");
        Directory.CreateDirectory(output);
        var options = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        void Write(string name, IEnumerable<object> records) =>
            File.WriteAllLines(Path.Combine(output, name), records.Select(r => JsonSerializer.Serialize(r, options)));
        Write("train.jsonl", train.Select(f => new { text = f.Text }));
        Write("validation.jsonl", validation.Select(f => new { text = f.Text }));
        Write("classify-train.jsonl", train.Where(f => labels.Contains(f.File)).Select(f => new { text = f.Text, label = f.File }));
        Write("classify-validation.jsonl", validation.Where(f => labels.Contains(f.File)).Select(f => new { text = f.Text, label = f.File }));
        var summary = new
        {
            output_dir = output, files = fortunes.Select(f => f.File).Distinct().Count(), train = train.Count, validation = validation.Count,
            classify_train = train.Count(f => labels.Contains(f.File)), classify_validation = validation.Count(f => labels.Contains(f.File)),
        };
        if (parse.GetValue(CommonOptions.Json)) JsonOutput.Write(summary);
        else Console.WriteLine($"{summary.files} fortune files: {summary.train} training and {summary.validation} validation quotations, " +
                               $"{summary.classify_train}/{summary.classify_validation} of them in {string.Join(", ", labels.Order())} for classification → {output}");
        return 0;
    }
}
