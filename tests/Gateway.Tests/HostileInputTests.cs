using System.Net;
using System.Text;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>Client input that used to be answered with a 500: each is now a 400 naming the problem, or a normal answer.</summary>
[Collection(GatewayCollection.Name)]
public sealed class HostileInputTests(GatewayFixture fixture)
{
    private const string Chat = "/v1/chat/completions";

    private static ByteArrayContent Raw(byte[] body) => new(body) { Headers = { ContentType = new("application/json") } };

    [Theory]
    [InlineData(Chat, """{"model":"alpha","messages":[{"role":"user","content":"hi \ud800 there"}]}""", "messages")]
    [InlineData("/v1/completions", """{"model":"alpha","prompt":"\udfff"}""", "prompt")]
    [InlineData("/v1/completions", """{"model":"alpha","prompt":"ok","stop":["\ud83d"]}""", "stop")]
    [InlineData("/v1/completions", """{"model":"alpha","\ud800":1}""", null)]
    public async Task A_lone_surrogate_in_any_string_is_a_400_naming_its_field(string path, string body, string? field)
    {
        using var client = fixture.Client();
        var error = await ReadError(await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_text", error.GetProperty("code").GetString());
        Assert.Equal(field, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Invalid_utf8_in_a_string_is_a_400()
    {
        using var client = fixture.Client();
        var body = Encoding.UTF8.GetBytes("""{"model":"alpha","prompt":"ab__cd"}""");
        body[Array.IndexOf(body, (byte)'_')] = 0xC3; // a lead byte followed by '_': not UTF-8
        body[Array.IndexOf(body, (byte)'_')] = 0x28;
        var response = await client.PostAsync("/v1/completions", Raw(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_content_part_whose_type_is_not_a_string_is_a_400()
    {
        using var client = fixture.Client();
        var response = await client.PostAsync(Chat, new StringContent("""{"model":"alpha","messages":[{"role":"user","content":[{"type":5,"text":"hi"}]}]}""",
            Encoding.UTF8, "application/json"));
        Assert.Equal("messages", (await ReadError(response, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("temperature", 1e-38)]
    [InlineData("repetition_penalty", 1e-39)]
    public async Task Tiny_values_inside_the_accepted_ranges_generate(string field, double value)
    {
        using var client = fixture.Client();
        var body = new Dictionary<string, object> { ["model"] = GatewayFixture.Model, ["prompt"] = "Once upon a time", ["max_tokens"] = 5, ["seed"] = 3, [field] = value };
        var response = await client.PostAsync("/v1/completions", Json(body));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(5, (await ReadJson(response)).GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Theory]
    [InlineData("top_p", 0, "'top_p' must be a number greater than 0 and at most 1")]
    [InlineData("top_p", 2, "'top_p' must be a number greater than 0 and at most 1")]
    [InlineData("repetition_penalty", -1, "'repetition_penalty' must be a number greater than 0 and at most 100")]
    public async Task A_value_outside_an_open_range_is_a_400_that_states_the_range_in_words(string field, double value, string message)
    {
        using var client = fixture.Client();
        var body = new Dictionary<string, object> { ["model"] = GatewayFixture.Model, ["prompt"] = "hi", ["max_tokens"] = 2, [field] = value };
        var error = await ReadError(await client.PostAsync("/v1/completions", Json(body)), HttpStatusCode.BadRequest);
        Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Equal(message, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_wrong_method_is_405_with_allow_and_an_unknown_route_404_both_with_the_error_object()
    {
        using var client = fixture.Client();
        var wrongMethod = await client.GetAsync("/v1/completions");
        var error = await ReadError(wrongMethod, HttpStatusCode.MethodNotAllowed);
        Assert.Equal("method_not_allowed", error.GetProperty("code").GetString());
        Assert.Contains("POST", wrongMethod.Content.Headers.Allow);
        Assert.Equal("not_found", (await ReadError(await client.DeleteAsync("/v1/no-such-route"), HttpStatusCode.NotFound)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Error_responses_are_counted_in_the_http_metrics()
    {
        using var client = fixture.Client();
        await client.PostAsync("/v1/completions", new StringContent("{not json", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client(key: "sk-wrong-key").GetAsync("/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/v1/models/no-such-model")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/v1/no-such-route")).StatusCode);
        var lines = (await (await client.GetAsync("/metrics")).Content.ReadAsStringAsync()).Split('\n');
        Assert.Contains(lines, line => line.StartsWith("http_requests_received_total{code=\"400\",method=\"POST\"", StringComparison.Ordinal)
            && line.Contains("endpoint=\"/v1/completions\""));
        Assert.Contains(lines, line => line.StartsWith("http_requests_received_total{code=\"401\",method=\"GET\"", StringComparison.Ordinal)
            && line.Contains("endpoint=\"/v1/models\""));
        Assert.Contains(lines, line => line.StartsWith("http_requests_received_total{code=\"404\",method=\"GET\"", StringComparison.Ordinal)
            && line.Contains("endpoint=\"/v1/models/{id}\""));
        Assert.Contains(lines, line => line.StartsWith("http_requests_received_total{code=\"404\",method=\"GET\"", StringComparison.Ordinal)); // no route
    }

    [Fact]
    public async Task A_malformed_chunked_body_is_a_400_and_the_server_keeps_answering()
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(fixture.BaseAddress.Host, fixture.BaseAddress.Port);
        var stream = tcp.GetStream();
        string request = $"POST /v1/completions HTTP/1.1\r\nHost: {fixture.BaseAddress.Authority}\r\nAuthorization: Bearer {GatewayFixture.Key}\r\n" +
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"mod\r\nZZ\r\nel\":1}\r\n0\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        string status = (await reader.ReadLineAsync(timeout.Token))!;
        Assert.StartsWith("HTTP/1.1 400", status);
        using var client = fixture.Client();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/models")).StatusCode);
    }
}
