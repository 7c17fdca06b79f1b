using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>/v1/sessions over real HTTP: a conversation kept on the server, streamed turns, fork, delete, and isolation between tenants.</summary>
[Collection(GatewayCollection.Name)]
public sealed class SessionsTests(GatewayFixture fixture)
{
    private const string SystemPrompt = "You are a helpful assistant.";

    [Fact]
    public async Task A_conversation_lives_on_the_server_turn_after_turn()
    {
        using var client = fixture.Client();
        var created = await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model, system_prompt = SystemPrompt, temperature = 0, max_tokens = 8 }));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var session = await ReadJson(created);
        string id = session.GetProperty("id").GetString()!;
        int systemTokens = session.GetProperty("token_count").GetInt32();
        Assert.True(systemTokens > 0);

        // The first turn equals a chat completion of the same messages: both render the model's template.
        var reply = await ReadJson(await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Hello! Who are you?" })));
        var chat = await ReadJson(await client.PostAsync("/v1/chat/completions", Json(new
        {
            model = GatewayFixture.Model, max_tokens = 8, temperature = 0,
            messages = new object[] { new { role = "system", content = SystemPrompt }, new { role = "user", content = "Hello! Who are you?" } },
        })));
        Assert.Equal(chat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!.TrimEnd(),
            reply.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(8, reply.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        // The second turn streams, and only its own tokens are new to the engine.
        var events = await ReadEvents(await client.PostAsync($"/v1/sessions/{id}/messages",
            Json(new { content = "Tell me more.", stream = true, stream_options = new { include_usage = true } })));
        Assert.All(events, e => Assert.Equal(id, e.GetProperty("session_id").GetString()));
        string streamed = string.Concat(events[..^1].Select(e => e.GetProperty("choices")[0].GetProperty("delta"))
            .Select(d => d.TryGetProperty("content", out var c) ? c.GetString() : ""));
        var usage = events[^1].GetProperty("usage");
        Assert.True(usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32() >= systemTokens,
            "the second turn continues the session's kept KV");

        var transcript = await ReadJson(await client.GetAsync($"/v1/sessions/{id}"));
        var messages = transcript.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.Select(m => m.GetProperty("role").GetString()));
        Assert.Equal(streamed.Trim(), messages[3].GetProperty("content").GetString());
        Assert.Equal(SystemPrompt, transcript.GetProperty("system_prompt").GetString());
        Assert.True(transcript.GetProperty("token_count").GetInt32() > systemTokens + 16);
    }

    [Fact]
    public async Task Fork_copies_and_delete_removes()
    {
        using var client = fixture.Client();
        string id = (await ReadJson(await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model, temperature = 0, max_tokens = 4 }))))
            .GetProperty("id").GetString()!;
        await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Hi" }));
        var forked = await client.PostAsync($"/v1/sessions/{id}/fork", Json(new { id = id + "-fork" }));
        Assert.Equal(HttpStatusCode.Created, forked.StatusCode);
        var copy = await ReadJson(forked);
        Assert.Equal(id + "-fork", copy.GetProperty("id").GetString());
        Assert.Equal(2, copy.GetProperty("messages").GetArrayLength());
        var listed = (await ReadJson(await client.GetAsync("/v1/sessions"))).GetProperty("data").EnumerateArray().Select(s => s.GetProperty("id").GetString()).ToList();
        Assert.Contains(id, listed);
        Assert.Contains(id + "-fork", listed);

        Assert.Equal(HttpStatusCode.OK, (await client.DeleteAsync($"/v1/sessions/{id}")).StatusCode);
        await ReadError(await client.GetAsync($"/v1/sessions/{id}"), HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/sessions/{id}-fork")).StatusCode); // the fork lives on
    }

    [Fact]
    public async Task Another_tenant_s_session_is_a_404_exactly_like_a_missing_one()
    {
        using var owner = fixture.Client();
        string id = (await ReadJson(await owner.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model })))).GetProperty("id").GetString()!;
        using var stranger = await fixture.NewTenantClient();

        var missing = await ReadError(await stranger.GetAsync("/v1/sessions/no-such-session"), HttpStatusCode.NotFound);
        var theirs = await ReadError(await stranger.GetAsync($"/v1/sessions/{id}"), HttpStatusCode.NotFound);
        Assert.Equal(missing.GetProperty("message").GetString()!.Replace("no-such-session", id), theirs.GetProperty("message").GetString());
        await ReadError(await stranger.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "hi" })), HttpStatusCode.NotFound);
        await ReadError(await stranger.PostAsync($"/v1/sessions/{id}/fork", null), HttpStatusCode.NotFound);
        await ReadError(await stranger.DeleteAsync($"/v1/sessions/{id}"), HttpStatusCode.NotFound);
        Assert.Equal(0, (await ReadJson(await stranger.GetAsync("/v1/sessions"))).GetProperty("data").GetArrayLength());
        Assert.Equal(HttpStatusCode.OK, (await owner.GetAsync($"/v1/sessions/{id}")).StatusCode); // untouched
    }

    [Theory]
    [InlineData("""{"system_prompt":"x"}""", "model")]
    [InlineData("""{"model":"alpha","context_policy":"forget"}""", "context_policy")]
    [InlineData("""{"model":"alpha","id":"../etc"}""", "id")]
    [InlineData("""{"model":"alpha","temperature":-1}""", "temperature")]
    public async Task Invalid_sessions_are_a_400_naming_the_parameter(string body, string parameter)
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/sessions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(parameter, (await ReadError(response, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }

    [Fact]
    public async Task The_session_quota_is_a_403_without_retry_after_since_waiting_does_not_lift_it()
    {
        using var client = await fixture.NewTenantClient(new { max_sessions = 1 });
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model }))).StatusCode);
        var refused = await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model }));
        var error = await ReadError(refused, HttpStatusCode.Forbidden);
        Assert.Equal("quota_exceeded", error.GetProperty("code").GetString());
        Assert.Equal("max_sessions", error.GetProperty("param").GetString());
        Assert.Null(refused.Headers.RetryAfter);
    }

    [Theory]
    [InlineData("\"n\":2", "n")]
    [InlineData("\"logprobs\":true", "logprobs")]
    [InlineData("\"top_logprobs\":3", "top_logprobs")]
    [InlineData("\"echo\":true", "echo")]
    [InlineData("\"num_beams\":3", "num_beams")]
    [InlineData("\"best_of\":2", "best_of")]
    public async Task A_turn_asking_for_more_than_one_reply_of_text_is_a_400_naming_the_field_and_adds_no_turn(string field, string param)
    {
        using var client = fixture.Client();
        string id = (await ReadJson(await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model, max_tokens = 2 }))))
            .GetProperty("id").GetString()!;
        var refused = await client.PostAsync($"/v1/sessions/{id}/messages",
            new StringContent($"{{\"content\":\"Hi\",\"stream\":true,{field}}}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(param, (await ReadError(refused, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        var created = await client.PostAsync("/v1/sessions", new StringContent($"{{\"model\":\"{GatewayFixture.Model}\",{field}}}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(param, (await ReadError(created, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        // Their neutral values are accepted.
        var neutral = await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Hi", n = 1, logprobs = false, echo = false, num_beams = 1 }));
        Assert.Equal(HttpStatusCode.OK, neutral.StatusCode);
        Assert.Equal(2, (await ReadJson(await client.GetAsync($"/v1/sessions/{id}"))).GetProperty("messages").GetArrayLength());
    }
}
