using System.Net;
using System.Text;
using System.Text.Json;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>Structured outputs and tool calls over HTTP: the reply always parses and fits its schema; what cannot be honoured is a 400 before any stream.</summary>
[Collection(GatewayCollection.Name)]
public sealed class StructuredOutputsTests(GatewayFixture fixture)
{
    private static readonly object[] Messages = [new { role = "user", content = "Describe a city as JSON." }];

    private static readonly object CitySchema = new
    {
        type = "object",
        properties = new
        {
            city = new { type = "string", maxLength = 12 },
            population = new { type = "integer", minimum = 0, maximum = 100000 },
            tags = new { type = "array", items = new { @enum = new[] { "big", "small" } }, maxItems = 2 },
        },
        required = new[] { "city", "population" },
        additionalProperties = false,
    };

    private static readonly object[] Tools =
    [
        new { type = "function", function = new { name = "get_weather", description = "Weather in a city", parameters = new { type = "object", properties = new { city = new { type = "string", maxLength = 10 }, unit = new { @enum = new[] { "c", "f" } } }, required = new[] { "city", "unit" } } } },
        new { type = "function", function = new { name = "get_time", parameters = new { type = "object", properties = new { zone = new { type = "string", pattern = "^[A-Z]{3}$" } }, required = new[] { "zone" } } } },
    ];

    /// <summary>The schema's rules, checked one by one (the property tests in Inference.Tests check random schemas with a validator library).</summary>
    private static void AssertCity(string text)
    {
        var city = JsonDocument.Parse(text).RootElement;
        Assert.Equal(JsonValueKind.Object, city.ValueKind);
        Assert.All(city.EnumerateObject(), p => Assert.Contains(p.Name, new[] { "city", "population", "tags" }));
        Assert.True(city.GetProperty("city").GetString()!.Length <= 12);
        Assert.InRange(city.GetProperty("population").GetInt64(), 0, 100000);
        if (city.TryGetProperty("tags", out var tags))
        {
            Assert.True(tags.GetArrayLength() <= 2);
            Assert.All(tags.EnumerateArray(), t => Assert.Contains(t.GetString(), new[] { "big", "small" }));
        }
    }

    [Fact]
    public async Task A_json_schema_reply_parses_and_fits_whole_and_streamed_for_every_choice()
    {
        using var client = fixture.Client();
        var format = new { type = "json_schema", json_schema = new { name = "city", strict = true, schema = CitySchema } };
        var whole = await ReadJson(await client.PostAsync("/v1/chat/completions",
            Json(new { model = GatewayFixture.Model, messages = Messages, max_tokens = 100, temperature = 0.8, seed = 7, n = 3, response_format = format })));
        var texts = new List<string>();
        foreach (var choice in whole.GetProperty("choices").EnumerateArray())
        {
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            texts.Add(choice.GetProperty("message").GetProperty("content").GetString()!);
            AssertCity(texts[^1]);
        }
        var streamed = await ReadEvents(await client.PostAsync("/v1/chat/completions",
            Json(new { model = GatewayFixture.Model, messages = Messages, max_tokens = 100, temperature = 0.8, seed = 7, n = 3, response_format = format, stream = true })));
        for (int k = 0; k < 3; k++)
        {
            var text = string.Concat(streamed.Select(e => e.GetProperty("choices")[0]).Where(c => c.GetProperty("index").GetInt32() == k)
                .Select(c => c.GetProperty("delta")).Where(d => d.TryGetProperty("content", out var t) && t.ValueKind == JsonValueKind.String).Select(d => d.GetProperty("content").GetString()));
            Assert.Equal(texts[k], text);
        }
    }

    [Fact]
    public async Task Json_object_guided_regex_and_guided_choice_constrain_completions()
    {
        using var client = fixture.Client();
        var json = await ReadJson(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Data:", max_tokens = 100, temperature = 0, response_format = new { type = "json_object" } })));
        var choice = json.GetProperty("choices")[0];
        if (choice.GetProperty("finish_reason").GetString() == "stop")
            Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(choice.GetProperty("text").GetString()!).RootElement.ValueKind);
        else Assert.StartsWith("{", choice.GetProperty("text").GetString()!.TrimStart());

        var regex = await ReadJson(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Code:", max_tokens = 20, temperature = 0.7, seed = 3, guided_regex = "[A-Z]{2}-[0-9]{3}" })));
        Assert.Matches("^[A-Z]{2}-[0-9]{3}$", regex.GetProperty("choices")[0].GetProperty("text").GetString());
        var picked = await ReadJson(await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = Messages, max_tokens = 10, guided_choice = new[] { "yes", "no" } })));
        Assert.Contains(picked.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), new[] { "yes", "no" });
        // Cut short: "length", as OpenAI reports a reply that max_tokens ended before its JSON closed.
        var cut = await ReadJson(await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = Messages, max_tokens = 2,
            response_format = new { type = "json_schema", json_schema = new { name = "long", schema = new { type = "object", properties = new { a = new { type = "string", minLength = 30 } }, required = new[] { "a" } } } } })));
        Assert.Equal("length", cut.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task A_session_message_takes_a_json_schema_whole_and_streamed_and_the_transcript_keeps_the_json()
    {
        using var client = fixture.Client();
        var format = new { type = "json_schema", json_schema = new { name = "city", schema = CitySchema } };
        string id = (await ReadJson(await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model, temperature = 0.8, seed = 5 }))))
            .GetProperty("id").GetString()!;
        var whole = await ReadJson(await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Describe a city as JSON.", max_tokens = 70, response_format = format })));
        Assert.Equal("stop", whole.GetProperty("finish_reason").GetString());
        string first = whole.GetProperty("message").GetProperty("content").GetString()!;
        AssertCity(first);
        var streamed = await ReadEvents(await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "Another one.", max_tokens = 70, response_format = format, stream = true })));
        string second = string.Concat(streamed.Select(e => e.GetProperty("choices")[0].GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out _)).Select(d => d.GetProperty("content").GetString()));
        AssertCity(second);
        var messages = (await ReadJson(await client.GetAsync($"/v1/sessions/{id}"))).GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal([first, second.Trim()], messages.Where(m => m.GetProperty("role").GetString() == "assistant").Select(m => m.GetProperty("content").GetString()));

        var badSchema = await ReadError(await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "x", stream = true, max_tokens = 1,
            response_format = new { type = "json_schema", json_schema = new { name = "x", schema = new { oneOf = new[] { new { type = "string" } } } } } })), HttpStatusCode.BadRequest);
        Assert.Contains("oneOf", badSchema.GetProperty("message").GetString());
        var tools = await ReadError(await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "x", tools = Tools, tool_choice = "required" })), HttpStatusCode.BadRequest);
        Assert.Equal("tools", tools.GetProperty("param").GetString());
        var asDefault = await ReadError(await client.PostAsync("/v1/sessions", Json(new { model = GatewayFixture.Model, response_format = format })), HttpStatusCode.BadRequest);
        Assert.Equal("response_format", asDefault.GetProperty("param").GetString());
        var audio = await ReadError(await client.PostAsync($"/v1/sessions/{id}/messages", Json(new { content = "x", audio = new { voice = "a" } })), HttpStatusCode.BadRequest);
        Assert.Equal("audio", audio.GetProperty("param").GetString());
        Assert.Equal(4, (await ReadJson(await client.GetAsync($"/v1/sessions/{id}"))).GetProperty("messages").GetArrayLength()); // refusals add no turn
    }

    [Theory]
    [InlineData("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"oneOf\":[{\"type\":\"string\"}]}}}", "response_format", "oneOf")]
    [InlineData("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\",\"minProperties\":2}}}", "response_format", "minProperties")]
    [InlineData("{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{}}}", "response_format", "name")]
    [InlineData("{\"type\":\"xml\"}", "response_format", "xml")]
    public async Task A_schema_it_cannot_honour_is_a_400_before_the_stream(string format, string param, string named)
    {
        using var client = fixture.Client();
        foreach (bool stream in new[] { false, true })
        {
            string body = $"{{\"model\":\"alpha\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hi\"}}],\"stream\":{(stream ? "true" : "false")},\"response_format\":{format}}}";
            var error = await ReadError(await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
            Assert.Equal(param, error.GetProperty("param").GetString());
            Assert.Contains(named, error.GetProperty("message").GetString());
        }
        var regex = await ReadError(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "x", guided_regex = "(a)\\1", stream = true })), HttpStatusCode.BadRequest);
        Assert.Equal("guided_regex", regex.GetProperty("param").GetString());
        Assert.Contains("backreference", regex.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_required_tool_call_is_returned_as_tool_calls_whole_and_streamed_and_its_result_can_be_sent_back()
    {
        using var client = fixture.Client();
        var whole = await ReadJson(await client.PostAsync("/v1/chat/completions",
            Json(new { model = GatewayFixture.Model, messages = Messages, tools = Tools, tool_choice = "required", max_tokens = 80, temperature = 0.8, seed = 11 })));
        var choice = whole.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
        var call = message.GetProperty("tool_calls")[0];
        Assert.StartsWith("call_", call.GetProperty("id").GetString());
        Assert.Equal("function", call.GetProperty("type").GetString());
        string name = call.GetProperty("function").GetProperty("name").GetString()!;
        var arguments = JsonDocument.Parse(call.GetProperty("function").GetProperty("arguments").GetString()!).RootElement;
        if (name == "get_weather")
        {
            Assert.True(arguments.GetProperty("city").GetString()!.Length <= 10);
            Assert.Contains(arguments.GetProperty("unit").GetString(), new[] { "c", "f" });
        }
        else
        {
            Assert.Equal("get_time", name);
            Assert.Matches("^[A-Z]{3}$", arguments.GetProperty("zone").GetString());
        }

        var events = await ReadEvents(await client.PostAsync("/v1/chat/completions",
            Json(new { model = GatewayFixture.Model, messages = Messages, tools = Tools, tool_choice = "required", max_tokens = 80, temperature = 0.8, seed = 11, stream = true })));
        var deltas = events.Select(e => e.GetProperty("choices")[0]).ToList();
        var calls = deltas.Select(c => c.GetProperty("delta")).Where(d => d.TryGetProperty("tool_calls", out _)).Select(d => d.GetProperty("tool_calls")[0]).ToList();
        Assert.Equal(name, calls[0].GetProperty("function").GetProperty("name").GetString());
        Assert.StartsWith("call_", calls[0].GetProperty("id").GetString());
        Assert.Equal(call.GetProperty("function").GetProperty("arguments").GetString(), string.Concat(calls.Select(c => c.GetProperty("function").GetProperty("arguments").GetString())));
        Assert.Equal("tool_calls", deltas[^1].GetProperty("finish_reason").GetString());

        // A named function, then the call and its result sent back: the final answer is free text.
        var named = await ReadJson(await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = Messages, tools = Tools,
            tool_choice = new { type = "function", function = new { name = "get_time" } }, max_tokens = 60 })));
        var namedCall = named.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0];
        Assert.Equal("get_time", namedCall.GetProperty("function").GetProperty("name").GetString());
        object[] conversation =
        [
            Messages[0],
            new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = namedCall.GetProperty("id").GetString(), type = "function", function = new { name = "get_time", arguments = namedCall.GetProperty("function").GetProperty("arguments").GetString() } } } },
            new { role = "tool", tool_call_id = namedCall.GetProperty("id").GetString(), content = "12:00" },
        ];
        var answer = await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = conversation, tools = Tools, tool_choice = "none", max_tokens = 8 }));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(JsonValueKind.String, (await ReadJson(answer)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").ValueKind);
    }

    [Theory]
    [InlineData("\"tool_choice\":\"auto\"", "tool_choice")]
    [InlineData("\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"missing\"}}", "tool_choice")]
    [InlineData("\"tool_choice\":\"required\",\"response_format\":{\"type\":\"json_object\"}", "response_format")]
    [InlineData("\"tool_choice\":\"required\",\"parallel_tool_calls\":\"yes\"", "parallel_tool_calls")]
    public async Task Tool_requests_it_cannot_honour_are_a_400_naming_the_field(string extra, string param)
    {
        using var client = fixture.Client();
        string body = "{\"model\":\"alpha\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]," + extra + "}";
        var error = await ReadError(await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.Equal(param, error.GetProperty("param").GetString());
        var badTool = await ReadError(await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model, messages = Messages, tool_choice = "required",
            tools = new[] { new { type = "function", function = new { name = "bad name!" } } } })), HttpStatusCode.BadRequest);
        Assert.Equal("tools", badTool.GetProperty("param").GetString());
        var noId = await ReadError(await client.PostAsync("/v1/chat/completions", Json(new { model = GatewayFixture.Model,
            messages = new object[] { Messages[0], new { role = "tool", content = "x" } } })), HttpStatusCode.BadRequest);
        Assert.Contains("tool_call_id", noId.GetProperty("message").GetString());
    }
}
