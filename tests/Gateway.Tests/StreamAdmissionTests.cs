using System.Net;
using System.Text.Json;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>
/// A request the engine refuses is answered with OpenAI's error object before any byte of a stream (OpenAI validates
/// before it streams), whatever the endpoint; a model nobody serves is 404 <c>model_not_found</c>; a chat reply
/// without <c>max_tokens</c> is bounded by the room left in the context. The golden model's context is 128 positions.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class StreamAdmissionTests(GatewayFixture fixture)
{
    private static readonly object[] Hello = [new { role = "user", content = "Hello! Who are you?" }];

    /// <summary>The refusal is a JSON error with the status, not a 200 event stream cut after its first chunk.</summary>
    private static async Task<JsonElement> RefusedBeforeTheStream(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return await ReadError(response, status);
    }

    [Fact]
    public async Task A_streamed_chat_completion_beyond_the_context_is_a_400_before_the_stream()
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = Hello, max_tokens = 200, stream = true }));
        Assert.Equal("max_tokens", (await RefusedBeforeTheStream(response, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }

    [Fact]
    public async Task Streamed_completions_with_echo_or_several_prompts_are_refused_before_the_stream()
    {
        using var client = fixture.Client();
        var echo = await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Once upon a time", echo = true, logprobs = 1, max_tokens = 200, stream = true }));
        Assert.Equal("max_tokens", (await RefusedBeforeTheStream(echo, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        // The first prompt fits, the second does not: nothing of the first is sent either.
        var prompts = await client.PostAsync("/v1/completions", Json(new
        {
            model = GatewayFixture.Model, prompt = new[] { "Hi", string.Join(" ", Enumerable.Repeat("word", 120)) }, max_tokens = 20, stream = true,
        }));
        Assert.Equal("max_tokens", (await RefusedBeforeTheStream(prompts, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        // Both fit: both are answered, prompt by prompt, in one stream.
        var events = await ReadEvents(await client.PostAsync("/v1/completions", Json(new
        {
            model = GatewayFixture.Model, prompt = new[] { "Hi", "Once upon a time" }, max_tokens = 3, temperature = 0, stream = true,
        })));
        Assert.Equal([0, 1], events.Select(e => e.GetProperty("choices")[0].GetProperty("index").GetInt32()).Distinct().Order());
    }

    [Fact]
    public async Task A_session_turn_that_is_refused_is_an_error_before_the_stream_and_a_streamed_turn_opens_with_the_role()
    {
        using var client = fixture.Client();
        string id = (await ReadJson(await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model, temperature = 0, max_tokens = 4 }))))
            .GetProperty("id").GetString()!;
        var refused = await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Hello", max_tokens = 500, stream = true }));
        Assert.Equal("max_tokens", (await RefusedBeforeTheStream(refused, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        var events = await ReadEvents(await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Hello", stream = true })));
        Assert.Equal("assistant", events[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
    }

    [Fact]
    public async Task A_model_nobody_serves_is_404_model_not_found_on_every_endpoint()
    {
        using var client = fixture.Client();
        foreach (var response in new[]
        {
            await client.PostAsync("/v1/completions", Json(new { model = "nope", prompt = "Hi" })),
            await client.PostAsync("/v1/completions", Json(new { model = "nope", prompt = "Hi", stream = true })),
            await client.PostAsync("/v1/chat/completions", Json(new { model = "nope", messages = Hello, stream = true })),
            await client.GetAsync("/v1/models/nope"),
        })
        {
            var error = await ReadError(response, HttpStatusCode.NotFound);
            Assert.Equal("model_not_found", error.GetProperty("code").GetString());
            Assert.Equal("model", error.GetProperty("param").GetString());
        }
    }

    [Fact]
    public async Task A_chat_reply_without_max_tokens_is_bounded_by_the_room_left_in_the_context()
    {
        using var client = fixture.Client();
        // ~100 prompt tokens: 128 more would not fit, the room left does.
        var messages = new[] { new { role = "user", content = string.Join(" ", Enumerable.Repeat("word", 90)) } };
        var response = await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages, temperature = 0 }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var usage = (await ReadJson(response)).GetProperty("usage");
        int prompt = usage.GetProperty("prompt_tokens").GetInt32(), completion = usage.GetProperty("completion_tokens").GetInt32();
        Assert.InRange(prompt, 91, 127);
        Assert.InRange(prompt + completion, prompt, 128);
        // A prompt that fills the context leaves no room: a 400 naming it, not an empty reply.
        var full = new[] { new { role = "user", content = string.Join(" ", Enumerable.Repeat("word", 140)) } };
        var refused = await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = full, stream = true }));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
    }
}
