using Gpt2Orleans.Inference.Engine;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Gpt2Orleans.Gateway.Tests.Support;
using Gpt2Orleans.Grains;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using Microsoft.Extensions.DependencyInjection;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>/v1/completions over real HTTP: whole and streamed answers, OpenAI's shapes, errors and cancellation.</summary>
[Collection(GatewayCollection.Name)]
public sealed class CompletionsTests(GatewayFixture fixture)
{
    [Fact]
    public async Task A_greedy_completion_equals_the_inference_library()
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hello, my name is", max_tokens = 8, temperature = 0 }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await ReadJson(response);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        var choice = body.GetProperty("choices")[0];

        using var model = Gpt2LMHeadModel.FromPretrained(GatewayFixture.ModelFolder);
        using var engine = new GenerationEngine(model, Gpt2Tokenizer.Default, new EngineOptions { KvBlocks = 64 });
        var expected = (await engine.GenerateAsync([Gpt2Tokenizer.Default.Encode("Hello, my name is")],
            GenerationConfig.FromDirectory(GatewayFixture.ModelFolder) with { MaxNewTokens = 8 }))[0];
        Assert.Equal(expected.Text, choice.GetProperty("text").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(8, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(5, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    /// <summary>A prompt of token ids is one prompt however long: the limit on how many prompts a request holds does not apply to its ids.</summary>
    [Fact]
    public async Task A_long_token_id_prompt_is_one_prompt()
    {
        using var client = fixture.Client();
        var ids = Enumerable.Range(1000, 40).ToArray();
        var body = await ReadJson(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = ids, max_tokens = 2, temperature = 0 })));
        Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal(40, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task A_streamed_completion_gives_the_same_text_in_chunks_then_usage_then_done()
    {
        using var client = fixture.Client();
        var request = new { model = GatewayFixture.Model, prompt = new[] { 464, 3616, 286 }, max_tokens = 10, temperature = 0 };
        var whole = (await ReadJson(await client.PostAsync("/v1/completions", Json(request)))).GetProperty("choices")[0].GetProperty("text").GetString();

        var response = await client.PostAsync("/v1/completions", Json(new
        {
            request.model, request.prompt, request.max_tokens, request.temperature, stream = true, stream_options = new { include_usage = true },
        }));
        var events = await ReadEvents(response);
        var chunks = events[..^1];
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal(whole, string.Concat(chunks.Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal("length", chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var usage = events[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(13, usage.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task A_stop_string_ends_the_text_before_it()
    {
        using var client = fixture.Client();
        var whole = (await ReadJson(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Once upon", max_tokens = 12, temperature = 0 }))))
            .GetProperty("choices")[0].GetProperty("text").GetString()!;
        string stop = whole.Substring(whole.Length / 2, 2); // two characters from the middle of the greedy text
        var body = await ReadJson(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Once upon", max_tokens = 12, temperature = 0, stop })));
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(whole[..whole.IndexOf(stop, StringComparison.Ordinal)], choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Theory]
    [InlineData("""{"model":"alpha","temperature":5}""", "temperature")]
    [InlineData("""{"model":"alpha","max_tokens":"ten"}""", "max_tokens")]
    [InlineData("""{"model":"alpha","n":0}""", "n")]
    [InlineData("""{"model":"alpha","prompt":[]}""", "prompt")]
    [InlineData("""{"model":"alpha","stop":["a","b","c","d","e"]}""", "stop")]
    [InlineData("""{"model":"alpha","logit_bias":{"x":1}}""", "logit_bias")]
    [InlineData("""{"prompt":"hi"}""", "model")]
    [InlineData("""{"model":"alpha","prompt":"hi","max_tokens":200}""", "max_tokens")]
    public async Task Invalid_parameters_are_a_400_naming_the_parameter(string body, string parameter)
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await ReadJson(response)).GetProperty("error");
        Assert.Equal(parameter, error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task Keys_bodies_and_routes_fail_with_openai_errors()
    {
        using var anonymous = fixture.Client(key: null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/v1/models")).StatusCode);
        using var wrong = fixture.Client(key: "g2o-not-a-real-key");
        var denied = await wrong.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model }));
        Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        Assert.Equal("invalid_api_key", (await ReadJson(denied)).GetProperty("error").GetProperty("code").GetString());

        using var client = fixture.Client();
        var badJson = await client.PostAsync("/v1/completions", new StringContent("{not json", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, badJson.StatusCode);
        // Expect: 100-continue (as curl sends for large bodies): the 413 comes before the body is sent, so the client
        // reads it instead of failing on a connection the server closed mid-upload.
        var oversized = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent($$"""{"model":"alpha","prompt":"{{new string('a', 5 << 20)}}"}""", Encoding.UTF8, "application/json"),
        };
        oversized.Headers.ExpectContinue = true;
        var huge = await client.SendAsync(oversized);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/v1/nothing-here")).StatusCode);
        Assert.DoesNotContain("   at ", await huge.Content.ReadAsStringAsync()); // never a stack trace
    }

    [Fact]
    public async Task Closing_the_connection_mid_stream_frees_the_kv_at_once()
    {
        var cluster = fixture.Services.GetRequiredService<IClusterClient>();
        var catalog = await cluster.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).GetModel(GatewayFixture.Model);
        var worker = cluster.GetGrain<IModelGrain>(GrainKeys.ModelWorker(GatewayFixture.Model, catalog.Silos[0]));
        // The baseline is taken once the worker is quiet (nothing running, the blocks in use steady): an earlier test's
        // stream or released conversation may still be freeing blocks. (Sessions of other tests keep theirs between
        // turns, so the baseline need not be zero.)
        var quiet = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        int before = (await worker.GetStatus()).KvBlocksUsed;
        while (DateTime.UtcNow < quiet)
        {
            await Task.Delay(100);
            var now = await worker.GetStatus();
            if (now.Running == 0 && now.KvBlocksUsed == before) break;
            before = now.KvBlocksUsed;
        }

        using (var client = fixture.Client())
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
            {
                Content = Json(new { model = GatewayFixture.Model, prompt = "Tell me a long story", max_tokens = 100, stream = true, ignore_eos = true }),
            };
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            await using var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[64];
            Assert.True(await stream.ReadAsync(buffer) > 0); // the first chunk arrived: the sequence is running
            // The engine publishes its stats after each step and a step's tokens leave during it: the first chunk can
            // arrive before the step that sent it has published its blocks (the stream runs 100 tokens, so they stay).
            var published = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            int used;
            while ((used = (await worker.GetStatus()).KvBlocksUsed) <= before && DateTime.UtcNow < published) await Task.Delay(10);
            Assert.True(used > before);
        } // the client goes away here

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        ModelStatus status;
        while ((status = await worker.GetStatus()).KvBlocksUsed > before && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(before, status.KvBlocksUsed);
        Assert.Equal(0, status.Running);
    }

    [Fact]
    public async Task Models_are_listed_with_their_silos_and_heads()
    {
        using var client = fixture.Client();
        var list = await ReadJson(await client.GetAsync("/v1/models"));
        var models = list.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal([GatewayFixture.Model, GatewayFixture.Sentiment, GatewayFixture.Tagger], models.Select(m => m.GetProperty("id").GetString()));
        var model = models[0];
        Assert.Equal(["lm"], model.GetProperty("heads").EnumerateArray().Select(h => h.GetString()));
        Assert.Equal(["\nUser:"], model.GetProperty("chat_template").GetProperty("stop").EnumerateArray().Select(h => h.GetString()));
        Assert.Equal(["sequence-classification"], models[1].GetProperty("heads").EnumerateArray().Select(h => h.GetString()));
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.Single(model.GetProperty("silos").EnumerateArray());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/v1/models/nope")).StatusCode);
        Assert.Equal(GatewayFixture.Model, (await ReadJson(await client.GetAsync($"/v1/models/{GatewayFixture.Model}"))).GetProperty("id").GetString());
    }

    [Fact]
    public async Task Best_of_returns_the_most_likely_of_its_candidates()
    {
        using var client = fixture.Client();
        object Request(int n) => new { model = GatewayFixture.Model, prompt = "Once upon a time", max_tokens = 6, n, best_of = 4, seed = 11, logprobs = 0 };
        // With the same seed, both requests sample the same four candidates; n = 4 shows them all.
        var all = (await ReadJson(await client.PostAsync("/v1/completions", Json(Request(4))))).GetProperty("choices").EnumerateArray()
            .Select(c => (Text: c.GetProperty("text").GetString(), Logprob: c.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Sum(l => l.GetDouble())))
            .ToList();
        Assert.True(all.Select(c => c.Text).Distinct().Count() > 1, "sampling gave different candidates");
        var best = (await ReadJson(await client.PostAsync("/v1/completions", Json(Request(2))))).GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(all.OrderByDescending(c => c.Logprob).Take(2).Select(c => c.Text), best.Select(c => c.GetProperty("text").GetString()));
        Assert.Equal([0, 1], best.Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal("stream", (await ReadError(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, best_of = 2, stream = true })),
            HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }

    [Fact]
    public async Task Echoed_logprobs_have_offsets_into_the_returned_text_and_name_split_characters_by_their_bytes()
    {
        using var client = fixture.Client();
        const string prompt = "Hello world, I 😀 you";
        var logprobs = (await ReadJson(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt, echo = true, logprobs = 1, max_tokens = 0 }))))
            .GetProperty("choices")[0].GetProperty("logprobs");
        var tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToList();
        var offsets = logprobs.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToList();
        Assert.Equal(["Hello", " world"], tokens.Take(2));
        Assert.Equal([0, 5], offsets.Take(2)); // from the start of the returned text, which begins with the prompt
        Assert.Equal(offsets.Order(), offsets);
        Assert.All(offsets, o => Assert.InRange(o, 0, prompt.Length - 1));
        // GPT-2 splits the emoji's four bytes over tokens: those are named by their bytes, not by U+FFFD.
        Assert.Contains(tokens, t => t.StartsWith("bytes:\\x", StringComparison.Ordinal));
        Assert.DoesNotContain(tokens, t => t.Contains('\uFFFD'));
    }
}
