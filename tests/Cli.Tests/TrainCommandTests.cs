using System.Text;
using System.Text.Json;

namespace Gpt2Orleans.Cli.Tests;

/// <summary><c>gpt2o train</c>, <c>eval</c> and <c>prepare-fortunes</c> as a user runs them: tiny models, a few dozen steps, real processes.</summary>
public sealed class TrainCommandTests : IDisposable
{
    private const string TinyConfig = "n_layer=1,n_embd=16,n_head=2,n_positions=32";
    private readonly string _dir = Directory.CreateTempSubdirectory("gpt2o-train-cli-").FullName;

    private static readonly string[] Subjects = ["the cat", "a dog", "my friend", "the old man"], Verbs = ["sees", "likes", "finds"], Objects = ["the ball", "a red box", "the river"];

    private string Path(string name) => System.IO.Path.Combine(_dir, name);

    private string WriteLines(string name, IEnumerable<object> records)
    {
        File.WriteAllLines(Path(name), records.Select(r => JsonSerializer.Serialize(r)));
        return Path(name);
    }

    private string Corpus(string name, int documents, int seed)
    {
        var random = new Random(seed);
        string Sentence() => $"{Subjects[random.Next(Subjects.Length)]} {Verbs[random.Next(Verbs.Length)]} {Objects[random.Next(Objects.Length)]}.";
        return WriteLines(name, Enumerable.Range(0, documents).Select(_ => new { text = string.Join(" ", Enumerable.Range(0, 3).Select(_ => Sentence())) }));
    }

    private static string[] TrainArgs(string train, string output, params string[] more) =>
    [
        "train", "--config", TinyConfig, "--train-file", train, "--output-dir", output, "--block-size", "16", "--per-device-train-batch-size", "4",
        "--learning-rate", "2e-2", "--warmup-steps", "2", "--max-steps", "30", "--logging-steps", "5", "--seed", "7", .. more,
    ];

    private static List<JsonElement> JsonLines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public async Task Train_writes_an_hf_folder_that_generate_and_eval_load_and_a_resumed_run_repeats_the_losses()
    {
        string train = Corpus("train.jsonl", 200, 1), validation = Corpus("validation.jsonl", 20, 2), output = Path("out");
        var run = await CliRunner.RunAsync(TrainArgs(train, output, "--validation-file", validation, "--save-steps", "15", "--json"));
        Assert.True(run.ExitCode == 0, run.Stderr);
        var lines = JsonLines(run.Stdout);
        var summary = lines[^1];
        Assert.Equal(30, summary.GetProperty("global_step").GetInt32());
        var losses = lines.Where(l => l.TryGetProperty("loss", out _)).ToDictionary(l => l.GetProperty("step").GetInt32(), l => l.GetProperty("loss").GetDouble());
        Assert.Equal([5, 10, 15, 20, 25, 30], losses.Keys);
        Assert.True(losses[30] < losses[5] - 2, $"training loss {losses[5]:F3} → {losses[30]:F3}");
        Assert.True(summary.GetProperty("eval_perplexity").GetDouble() < 50, summary.ToString());
        foreach (var file in new[] { "config.json", "model.safetensors", "generation_config.json", "vocab.json", "merges.txt", "trainer_log.jsonl", "all_results.json" })
            Assert.True(File.Exists(System.IO.Path.Combine(output, file)), $"the output has {file}");
        Assert.Equal(lines.Count - 1, File.ReadAllLines(System.IO.Path.Combine(output, "trainer_log.jsonl")).Length);
        Assert.True(Directory.Exists(System.IO.Path.Combine(output, "checkpoint-15")) && Directory.Exists(System.IO.Path.Combine(output, "checkpoint-30")));

        var generate = await CliRunner.RunAsync(["generate", "--model", output, "--prompt", "the cat", "--max-new-tokens", "4", "--json"]);
        Assert.True(generate.ExitCode == 0, generate.Stderr);
        var eval = await CliRunner.RunAsync(["eval", "--model", output, "--file", validation, "--max-length", "16", "--json"]);
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        // The same windows as the training's validation blocks, plus the stream's last partial window, which blocks drop.
        Assert.True(Math.Abs(summary.GetProperty("eval_loss").GetDouble() - eval.Json.GetProperty("loss").GetDouble()) < 0.05, eval.Stdout);

        // BLEU of greedy continuations: against the continuation generate gives it is 1; against other text, less.
        var greedy = await CliRunner.RunAsync(["generate", "--model", output, "--prompt", "the cat sees", "--max-new-tokens", "8", "--json"]);
        Assert.True(greedy.ExitCode == 0, greedy.Stderr);
        string continuation = greedy.Json.GetProperty("sequences")[0].GetProperty("text").GetString()!;
        string bleuFile = WriteLines("bleu.jsonl", [new { prompt = "the cat sees", references = new[] { continuation, " nothing at all" } }]);
        var bleu = await CliRunner.RunAsync(["eval", "--model", output, "--file", bleuFile, "--bleu", "--max-new-tokens", "8", "--json"]);
        Assert.True(bleu.ExitCode == 0, bleu.Stderr);
        Assert.Equal(1, bleu.Json.GetProperty("bleu").GetDouble(), 9);
        string otherFile = WriteLines("bleu-other.jsonl", [new { prompt = "the cat sees", reference = " the river because it is wet and cold today" }]);
        var other = await CliRunner.RunAsync(["eval", "--model", output, "--file", otherFile, "--bleu", "--max-new-tokens", "8", "--json"]);
        Assert.True(other.ExitCode == 0, other.Stderr);
        Assert.True(other.Json.GetProperty("bleu").GetDouble() < 1, other.Stdout);
        Assert.Equal(continuation.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length > 0, other.Json.GetProperty("hypothesis_length").GetInt32() > 0);

        // Resumed from step 15, the run logs exactly the uninterrupted run's losses for steps 20, 25 and 30.
        var resumed = await CliRunner.RunAsync(TrainArgs(train, Path("resumed"), "--validation-file", validation, "--resume-from-checkpoint",
            System.IO.Path.Combine(output, "checkpoint-15"), "--json"));
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        var again = JsonLines(resumed.Stdout).Where(l => l.TryGetProperty("loss", out _)).ToDictionary(l => l.GetProperty("step").GetInt32(), l => l.GetProperty("loss").GetDouble());
        Assert.Equal([20, 25, 30], again.Keys);
        foreach (var step in again.Keys) Assert.Equal(losses[step], again[step]);
    }

    [Fact]
    public async Task A_sequence_classifier_trains_and_eval_reports_accuracy_f1_and_the_majority_baseline()
    {
        var random = new Random(5);
        object Example()
        {
            bool animal = random.Next(3) > 0;
            string subject = animal ? new[] { "the cat", "a dog", "a bird" }[random.Next(3)] : new[] { "my friend", "the old man" }[random.Next(2)];
            return new { text = $"{subject} {Verbs[random.Next(Verbs.Length)]} {Objects[random.Next(Objects.Length)]}.", label = animal ? "animal" : "person" };
        }
        string train = WriteLines("cls-train.jsonl", Enumerable.Range(0, 160).Select(_ => Example()));
        string validation = WriteLines("cls-validation.jsonl", Enumerable.Range(0, 40).Select(_ => Example()));
        var run = await CliRunner.RunAsync(["train", "--task", "sequence-classification", "--config", TinyConfig + ",n_embd=32", "--train-file", train,
            "--validation-file", validation, "--output-dir", Path("cls"), "--max-steps", "60", "--per-device-train-batch-size", "8", "--learning-rate", "3e-3", "--json"]);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var eval = await CliRunner.RunAsync(["eval", "--model", Path("cls"), "--file", validation, "--train-file", train, "--json"]);
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        double accuracy = eval.Json.GetProperty("accuracy").GetDouble(), majority = eval.Json.GetProperty("majority_baseline").GetDouble();
        Assert.True(accuracy > majority + 0.15, $"accuracy {accuracy:F3} against the majority baseline {majority:F3}");
        Assert.Equal(JsonLines(run.Stdout)[^1].GetProperty("eval_accuracy").GetDouble(), accuracy, 9);
        Assert.True(eval.Json.GetProperty("f1").TryGetProperty("animal", out _));
        Assert.Equal("GPT2ForSequenceClassification", JsonDocument.Parse(File.ReadAllText(System.IO.Path.Combine(Path("cls"), "config.json"))).RootElement.GetProperty("architectures")[0].GetString());
    }

    [Fact]
    public async Task A_token_classifier_trains_on_tagged_words_and_eval_reports_token_accuracy()
    {
        var random = new Random(6);
        object Example()
        {
            var words = new List<string>();
            var labels = new List<string>();
            foreach (var (phrase, tag) in new[] { (Subjects[random.Next(Subjects.Length)], "SUBJ"), (Verbs[random.Next(Verbs.Length)], "VERB"), (Objects[random.Next(Objects.Length)], "OBJ") })
                foreach (var word in phrase.Split(' ')) { words.Add(word); labels.Add(tag); }
            return new { tokens = words, labels };
        }
        string train = WriteLines("tok-train.jsonl", Enumerable.Range(0, 160).Select(_ => Example()));
        string validation = WriteLines("tok-validation.jsonl", Enumerable.Range(0, 30).Select(_ => Example()));
        var run = await CliRunner.RunAsync(["train", "--task", "token-classification", "--config", TinyConfig + ",n_embd=32", "--train-file", train,
            "--validation-file", validation, "--labels", "SUBJ,VERB,OBJ", "--output-dir", Path("tok"), "--max-steps", "60", "--per-device-train-batch-size", "8",
            "--learning-rate", "5e-3", "--json"]);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var eval = await CliRunner.RunAsync(["eval", "--model", Path("tok"), "--file", validation, "--json"]);
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        Assert.True(eval.Json.GetProperty("accuracy").GetDouble() > 0.8, eval.Stdout);
        Assert.Equal(["SUBJ", "VERB", "OBJ"], eval.Json.GetProperty("f1").EnumerateObject().Select(p => p.Name));
    }

    public static TheoryData<string, string> BadInputs => new()
    {
        { "empty", "holds no text" },
        { "latin1", "not valid UTF-8" },
        { "label-outside", "not one of the 2 labels" },
        { "label-index", "outside num_labels" },
        { "block-size", "block_size must be between 1 and the model's n_positions (32)" },
        { "output-file", "is a file" },
        { "output-not-empty", "--overwrite-output-dir" },
        { "config-key", "n_layers' is not a GPT2Config field" },
        { "config-value", "n_head" },
        { "no-model", "--config" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Bad_input_is_a_clear_error_with_exit_code_2_and_writes_nothing(string problem, string named)
    {
        string train = Corpus("train.jsonl", 50, 1), output = Path("out");
        string[] args = problem switch
        {
            "empty" => TrainArgs(Write("empty.jsonl", "\n"), output),
            "latin1" => TrainArgs(Write("latin1.txt", [0x63, 0x61, 0x66, 0xE9]), output),
            "label-outside" => ["train", "--task", "sequence-classification", "--config", TinyConfig, "--labels", "a,b", "--output-dir", output,
                "--train-file", WriteLines("c.jsonl", [new { text = "x", label = "a" }, new { text = "y", label = "c" }])],
            "label-index" => ["train", "--task", "sequence-classification", "--config", TinyConfig, "--labels", "a,b", "--output-dir", output,
                "--train-file", WriteLines("c.jsonl", [new { text = "x", label = 0 }, new { text = "y", label = 5 }])],
            "block-size" => ["train", "--config", TinyConfig, "--train-file", train, "--output-dir", output, "--block-size", "64"],
            "output-file" => TrainArgs(train, Write("a-file", "not a folder")),
            "output-not-empty" => TrainArgs(train, Write("full/something.txt", "here") is var _ ? Path("full") : ""),
            "config-key" => ["train", "--config", "n_layers=2", "--train-file", train, "--output-dir", output],
            "config-value" => ["train", "--config", "n_embd=16,n_head=3", "--train-file", train, "--output-dir", output],
            "no-model" => ["train", "--train-file", train, "--output-dir", output],
            _ => throw new ArgumentException(problem),
        };
        var result = await CliRunner.RunAsync(args);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("error: ", result.Stderr.Split('\n').Last(l => l.Length > 0));
        Assert.Contains(named, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
        Assert.False(Directory.Exists(output), "a refused run writes nothing");
    }

    [Fact]
    public async Task Prepare_fortunes_splits_a_fortune_corpus_into_lm_and_topic_classification_files()
    {
        string corpus = Path("fortunes");
        Directory.CreateDirectory(corpus);
        File.WriteAllText(System.IO.Path.Combine(corpus, "food"), string.Join("\n%\n", Enumerable.Range(0, 30).Select(i => $"Eat your greens, number {i}.")) + "\n%\n");
        File.WriteAllText(System.IO.Path.Combine(corpus, "computers"), string.Join("\n%\n", Enumerable.Range(0, 20).Select(i => $"Reboot _\bit, number {i}.")) + "\n");
        File.WriteAllText(System.IO.Path.Combine(corpus, "food.dat"), "index, not text");
        var result = await CliRunner.RunAsync(["prepare-fortunes", "--fortunes-dir", corpus, "--output-dir", Path("data"), "--labels", "food,computers", "--validation-split", "0.2", "--json"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(40, result.Json.GetProperty("train").GetInt32());
        Assert.Equal(10, result.Json.GetProperty("validation").GetInt32());
        var classify = JsonLines(File.ReadAllText(System.IO.Path.Combine(Path("data"), "classify-train.jsonl")));
        Assert.Equal(40, classify.Count);
        Assert.Contains(classify, c => c.GetProperty("text").GetString() == "Reboot it, number 3." || c.GetProperty("label").GetString() == "food");
        Assert.DoesNotContain(classify, c => c.GetProperty("text").GetString()!.Contains('\b') || c.GetProperty("text").GetString()!.Contains('%'));
        var training = File.ReadAllLines(System.IO.Path.Combine(Path("data"), "train.jsonl")).ToHashSet();
        Assert.DoesNotContain(File.ReadAllLines(System.IO.Path.Combine(Path("data"), "validation.jsonl")), training.Contains);

        var missing = await CliRunner.RunAsync(["prepare-fortunes", "--fortunes-dir", corpus, "--output-dir", Path("data2"), "--labels", "food,poetry"]);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("poetry", missing.Stderr);
    }

    private string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    private string Write(string name, byte[] bytes)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path(name))!);
        File.WriteAllBytes(Path(name), bytes);
        return Path(name);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
