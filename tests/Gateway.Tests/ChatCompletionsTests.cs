using Gpt2Orleans.Inference.Engine;
using System.Net;
using System.Text.Json;
using Gpt2Orleans.Gateway.Tests.Support;
using Gpt2Orleans.Grains;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>/v1/chat/completions over real HTTP: the template's prompt, OpenAI's shapes whole and streamed, logprobs, errors.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ChatCompletionsTests(GatewayFixture fixture)
{
    private static readonly object[] Messages =
    [
        new { role = "system", content = "You are a helpful assistant." },
        new { role = "user", content = "Hello! Who are you?" },
    ];

    /// <summary>What the inference library writes after the default template's rendering of <see cref="Messages"/>.</summary>
    private static string LibraryReply(int maxTokens)
    {
        var template = ChatTemplate.Default;
        string prompt = template.Render([("system", "You are a helpful assistant."), ("user", "Hello! Who are you?")]);
        using var model = Gpt2LMHeadModel.FromPretrained(GatewayFixture.ModelFolder);
        using var engine = new GenerationEngine(model, Gpt2Tokenizer.Default, new EngineOptions { KvBlocks = 64 });
        var text = engine.GenerateAsync([Gpt2Tokenizer.Default.Encode(prompt)],
            GenerationConfig.FromDirectory(GatewayFixture.ModelFolder) with { MaxNewTokens = maxTokens, StopStrings = template.StopStrings }).GetAwaiter().GetResult()[0].Text;
        Assert.DoesNotContain(template.StopStrings[0], text); // the engine cuts the stop string out
        return text.TrimStart();
    }

    [Fact]
    public async Task A_greedy_chat_reply_equals_the_library_on_the_templated_prompt_whole_and_streamed()
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = Messages, max_tokens = 10, temperature = 0 }));
        var body = await ReadJson(response);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.StartsWith("chatcmpl-", body.GetProperty("id").GetString());
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        string whole = choice.GetProperty("message").GetProperty("content").GetString()!;
        Assert.Equal(LibraryReply(10), whole);
        Assert.Equal(10, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var streamed = await ReadEvents(await client.PostAsync("/v1/chat/completions", Json(new
        {
            model = GatewayFixture.Model, messages = Messages, max_tokens = 10, temperature = 0, stream = true, stream_options = new { include_usage = true },
        })));
        var chunks = streamed[..^1];
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(streamed.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal(whole, string.Concat(chunks.Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
            .Select(d => d.TryGetProperty("content", out var content) ? content.GetString() : "")));
        Assert.Equal("length", chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, streamed[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(10, streamed[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Logprobs_come_in_the_chat_shape_with_the_asked_number_of_alternatives()
    {
        using var client = fixture.Client();
        var body = await ReadJson(await client.PostAsync("/v1/chat/completions", Json(new
        {
            model = GatewayFixture.Model, messages = Messages, max_tokens = 4, temperature = 0, logprobs = true, top_logprobs = 3,
        })));
        var content = body.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").EnumerateArray().ToList();
        Assert.Equal(4, content.Count);
        foreach (var token in content)
        {
            var top = token.GetProperty("top_logprobs").EnumerateArray().ToList();
            Assert.Equal(3, top.Count);
            Assert.Equal(top[0].GetProperty("logprob").GetDouble(), token.GetProperty("logprob").GetDouble(), 5); // greedy: the chosen token is the likeliest
            Assert.True(token.GetProperty("logprob").GetDouble() <= 0);
            Assert.Equal(System.Text.Encoding.UTF8.GetBytes(token.GetProperty("token").GetString()!).Select(b => (int)b),
                token.GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()));
        }
    }

    [Fact]
    public async Task A_stop_string_of_the_request_is_added_to_the_template_s()
    {
        using var client = fixture.Client();
        string whole = LibraryReply(12);
        string stop = whole.Substring(whole.Length / 2, 2);
        var body = await ReadJson(await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = Messages, max_tokens = 12, temperature = 0, stop })));
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(whole[..whole.IndexOf(stop, StringComparison.Ordinal)], choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Theory]
    [InlineData("""{"model":"alpha"}""", "messages")]
    [InlineData("""{"model":"alpha","messages":[]}""", "messages")]
    [InlineData("""{"model":"alpha","messages":[{"role":"wizard","content":"hi"}]}""", "messages")]
    [InlineData("""{"model":"alpha","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", "messages")]
    [InlineData("""{"model":"alpha","messages":[{"role":"user","content":"hi"}],"top_logprobs":2}""", "top_logprobs")]
    [InlineData("""{"model":"alpha","messages":[{"role":"user","content":"hi"}],"max_tokens":100000}""", "max_tokens")]
    public async Task Invalid_chat_requests_are_a_400_naming_the_parameter(string body, string parameter)
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(parameter, (await ReadError(response, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }

    [Fact]
    public async Task Replies_carry_openais_fingerprint_service_tier_and_usage_fields_whole_and_streamed()
    {
        using var client = fixture.Client();
        var whole = await ReadJson(await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = Messages, max_tokens = 3 })));
        string fingerprint = whole.GetProperty("system_fingerprint").GetString()!;
        Assert.StartsWith("fp_", fingerprint);
        Assert.Equal("default", whole.GetProperty("service_tier").GetString());
        Assert.Equal(0, whole.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        var events = await ReadEvents(await client.PostAsync("/v1/chat/completions", Json(new
        {
            model = GatewayFixture.Model, messages = Messages, max_tokens = 3, stream = true, stream_options = new { include_usage = true },
        })));
        Assert.All(events, e => Assert.Equal(fingerprint, e.GetProperty("system_fingerprint").GetString()));
        Assert.All(events[..^1], e => Assert.Equal(JsonValueKind.Null, e.GetProperty("usage").ValueKind));
        Assert.Equal(3, events[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
