using System.Text.Json;
using Gpt2Orleans.Inference.Tests.Support;

namespace Gpt2Orleans.Cli.Tests;

public sealed class Gpt2oCommandTests
{
    private static readonly JsonElement Cases = JsonDocument.Parse(File.ReadAllText(CliRunner.Golden("cases.json"))).RootElement.GetProperty("cases");
    private static JsonElement Case(string id) => Cases.EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);
    private static readonly string Lm = CliRunner.Golden("models", "lm");

    [Fact]
    public async Task Generate_json_gives_hf_greedy_ids()
    {
        var c = Case("greedy_0");
        string prompt = c.GetProperty("prompts")[0].GetString()!;
        var result = await CliRunner.RunAsync(["generate", "--model", Lm, "--prompt", prompt, "--max-new-tokens", "24", "--json"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        var sequence = result.Json.GetProperty("sequences")[0];
        var expected = c.GetProperty("expected").GetProperty("new_tokens")[0].EnumerateArray().Select(v => v.GetInt32()).ToArray();
        Assert.Equal(expected, sequence.GetProperty("ids").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal(0, sequence.GetProperty("prompt_index").GetInt32());
        Assert.Equal(expected.Length, sequence.GetProperty("logprobs").GetArrayLength());
        Assert.False(string.IsNullOrEmpty(sequence.GetProperty("text").GetString()));
    }

    [Fact]
    public async Task Generate_accepts_hf_beam_options_and_returns_scores()
    {
        var c = Case("beam");
        var result = await CliRunner.RunAsync(["generate", "--model", Lm, "--prompt", c.GetProperty("prompts")[0].GetString()!, "--max-new-tokens", "24",
            "--num-beams", "4", "--num-return-sequences", "2", "--length-penalty", "1.2", "--early-stopping", "true", "--no-repeat-ngram-size", "2", "--json"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        var sequences = result.Json.GetProperty("sequences");
        var scores = c.GetProperty("expected").GetProperty("sequences_scores").EnumerateArray().Select(s => s.GetDouble()).ToArray();
        for (int i = 0; i < 2; i++) Assert.Equal(scores[i], sequences[i].GetProperty("score").GetDouble(), 1e-4);
    }

    [Fact]
    public async Task Score_reports_token_logprobs_loss_and_perplexity_like_hf()
    {
        var c = Case("lm_loss");
        var result = await CliRunner.RunAsync(["score", "--model", Lm, "--text", c.GetProperty("texts")[0].GetString()!, "--json"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        var json = result.Json;
        Assert.Equal(JsonValueKind.Null, json.GetProperty("token_logprobs")[0].ValueKind);
        Assert.Equal(c.GetProperty("expected").GetProperty("loss").GetDouble(), json.GetProperty("loss").GetDouble(), 1e-4);
        Assert.Equal(json.GetProperty("ids").GetArrayLength(), json.GetProperty("token_logprobs").GetArrayLength());
    }

    [Fact]
    public async Task Score_with_a_bf16_kv_cache_stays_close_to_hf()
    {
        var c = Case("lm_loss");
        var result = await CliRunner.RunAsync(["score", "--model", Lm, "--text", c.GetProperty("texts")[0].GetString()!, "--kv-dtype", "bfloat16", "--json"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        double loss = result.Json.GetProperty("loss").GetDouble(), expected = c.GetProperty("expected").GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(loss - expected) < 1e-2, $"loss {loss} with bf16 K/V against HF's {expected}");
    }

    [Fact]
    public async Task Classify_and_classify_tokens_use_the_heads()
    {
        var c = Case("seq_cls_right_pad");
        var texts = c.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var result = await CliRunner.RunAsync(["classify", "--model", CliRunner.Golden("models", "seq_cls"), .. texts.SelectMany(t => new[] { "--text", t }), "--json"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(texts.Length, result.Json.GetProperty("logits").GetArrayLength());
        Assert.All(result.Json.GetProperty("labels").EnumerateArray(), l => Assert.StartsWith("LABEL_", l.GetString()));

        var tokens = await CliRunner.RunAsync(["classify-tokens", "--model", CliRunner.Golden("models", "token_cls"), "--text", "Hello world", "--json"]);
        Assert.True(tokens.ExitCode == 0, tokens.Stderr);
        Assert.Equal(2, tokens.Json.GetProperty("labels")[0].GetArrayLength());
        Assert.Equal(5, tokens.Json.GetProperty("logits")[0][0].GetArrayLength());
    }

    [Theory]
    [InlineData("--model", "/no/such/folder", "neither an existing folder")]
    [InlineData("--max-new-tokens", "5000", "max_new_tokens")]
    [InlineData("--early-stopping", "sometimes", "--early-stopping")]
    [InlineData("--device", "tpu", "device 'tpu'")]
    [InlineData("--num-return-sequences", "3", "num_return_sequences")]
    [InlineData("--kv-dtype", "int8", "dtype 'int8'")]
    public async Task Bad_input_is_a_one_line_error_with_exit_code_2(string option, string value, string message)
    {
        string[] args = option == "--model"
            ? ["generate", option, value, "--prompt", "hi"]
            : ["generate", "--model", Lm, "--prompt", "hi", option, value];
        var result = await CliRunner.RunAsync(args);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Theory]
    [InlineData("bench-engine", "--bracketed-runs")] // before any measurement
    [InlineData("bench-gateway", "--decode-runs")]   // before the silo starts
    public async Task A_negative_count_of_runs_is_refused(string command, string option)
    {
        var result = await CliRunner.RunAsync([command, "--model", Lm, option, "-1"]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"error: {option} must be 0 or more", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Fact]
    public async Task A_hub_repo_id_is_downloaded_through_hf_endpoint_and_used()
    {
        string source = Directory.CreateTempSubdirectory("gpt2o-cli-hub-").FullName;
        string cache = Directory.CreateTempSubdirectory("gpt2o-cli-cache-").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(Lm).Concat(Directory.GetFiles(CliRunner.Golden("tokenizer"), "*.*")))
                File.Copy(file, Path.Combine(source, Path.GetFileName(file)));
            using var server = new LocalHubServer("someone/tiny-gpt2", source);
            var result = await CliRunner.RunAsync(["generate", "--model", "someone/tiny-gpt2", "--prompt", "Hello", "--max-new-tokens", "3", "--json"],
                new Dictionary<string, string> { ["HF_ENDPOINT"] = server.Endpoint, ["GPT2O_HUB_CACHE"] = cache });
            Assert.True(result.ExitCode == 0, result.Stderr);
            Assert.Equal(3, result.Json.GetProperty("sequences")[0].GetProperty("ids").GetArrayLength());
            Assert.True(File.Exists(Path.Combine(cache, "models--someone--tiny-gpt2", "main", "model.safetensors")));
        }
        finally
        {
            Directory.Delete(source, true);
            Directory.Delete(cache, true);
        }
    }

    [Fact]
    public async Task Without_a_model_the_default_random_gpt2_runs_and_says_so()
    {
        var result = await CliRunner.RunAsync(["generate", "--prompt", "Hello, my name is", "--max-new-tokens", "4"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains("RANDOM weights", result.Stderr);
        Assert.StartsWith("Hello, my name is", result.Stdout);
    }

    [Fact]
    public async Task Bench_gateway_runs_the_silo_measures_the_overhead_and_checks_every_stream()
    {
        var result = await CliRunner.RunAsync(["bench-gateway", "--model", Lm, "--seconds", "3", "--clients", "4", "--overhead-requests", "5", "--decode-runs", "2", "--json"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        var overhead = result.Json.GetProperty("overhead");
        Assert.True(overhead.GetProperty("engine_p50_ms").GetDouble() > 0);
        Assert.True(overhead.GetProperty("http_p50_ms").GetDouble() > overhead.GetProperty("http_floor_p50_ms").GetDouble());
        // One stream through HTTP and in process, in a shape that fits the tiny model's 128 positions, each run judged by its bound.
        var oneStream = result.Json.GetProperty("one_stream");
        Assert.Equal(32, oneStream.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(96, oneStream.GetProperty("new_tokens").GetInt32());
        foreach (var way in new[] { "http", "engine" })
        {
            var runs = oneStream.GetProperty(way).EnumerateArray().ToList();
            Assert.Equal(2, runs.Count);
            Assert.All(runs, r => Assert.True(r.GetProperty("decode_tokens_per_second").GetDouble() > 0 && r.GetProperty("fraction_of_bound").GetDouble() > 0));
        }
        var load = result.Json.GetProperty("load");
        Assert.True(load.GetProperty("requests").GetInt32() >= 4);
        Assert.Equal(0, load.GetProperty("errors").GetInt32());
        Assert.Equal(0, load.GetProperty("mismatches").GetInt32());
        Assert.Equal(0, load.GetProperty("kv_blocks_used_after").GetInt32());
    }

    [Fact]
    public async Task Eval_gives_the_perplexity_score_gives_when_the_text_fits_one_window_and_refuses_bad_input_with_exit_code_2()
    {
        string dir = Directory.CreateTempSubdirectory("gpt2o-eval-").FullName;
        try
        {
            const string text = "The quick brown fox jumps over the lazy dog. It was a sunny day and the birds were singing.";
            string file = Path.Combine(dir, "valid.txt");
            await File.WriteAllTextAsync(file, text);
            var eval = await CliRunner.RunAsync(["eval", "--model", Lm, "--file", file, "--json"]);
            Assert.True(eval.ExitCode == 0, eval.Stderr);
            var score = await CliRunner.RunAsync(["score", "--model", Lm, "--text", text, "--json"]);
            Assert.True(score.ExitCode == 0, score.Stderr);
            Assert.Equal(score.Json.GetProperty("loss").GetDouble(), eval.Json.GetProperty("loss").GetDouble(), 9);
            Assert.Equal(score.Json.GetProperty("ids").GetArrayLength() - 1, eval.Json.GetProperty("tokens").GetInt32());

            var windows = await CliRunner.RunAsync(["eval", "--model", Lm, "--file", file, "--max-length", "8", "--stride", "4", "--json"]);
            Assert.True(windows.ExitCode == 0, windows.Stderr);
            Assert.True(windows.Json.GetProperty("perplexity").GetDouble() > 1);
            var unigram = await CliRunner.RunAsync(["eval", "--baseline", "unigram", "--train-file", file, "--file", file, "--json"]);
            Assert.True(unigram.ExitCode == 0, unigram.Stderr);
            Assert.Equal(eval.Json.GetProperty("tokens").GetInt32(), unigram.Json.GetProperty("tokens").GetInt32());

            string latin1 = Path.Combine(dir, "latin1.txt");
            await File.WriteAllBytesAsync(latin1, [0x63, 0x61, 0x66, 0xE9]);
            foreach (var (args, named) in new (string[], string)[]
                     {
                         (["eval", "--model", Lm, "--file", latin1], "not valid UTF-8"),
                         (["eval", "--model", Lm, "--file", file, "--max-length", "100000"], "--max-length"),
                         (["eval", "--model", Lm, "--file", file, "--stride", "0"], "stride"),
                         (["eval", "--baseline", "unigram", "--file", file], "--train-file"),
                     })
            {
                var refused = await CliRunner.RunAsync(args);
                Assert.Equal(2, refused.ExitCode);
                Assert.StartsWith("error: ", refused.Stderr.Split('\n').Last(l => l.Length > 0));
                Assert.Contains(named, refused.Stderr);
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
