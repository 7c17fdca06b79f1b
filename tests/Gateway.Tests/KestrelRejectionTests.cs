using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>Requests the HTTP server itself refuses, before any route, still get OpenAI's error object.</summary>
[Collection(GatewayCollection.Name)]
public sealed class KestrelRejectionTests(GatewayFixture fixture)
{
    private string Host => fixture.BaseAddress.Authority;

    private static JsonElement ErrorOf(RawHttp.Response response, int status, string code)
    {
        Assert.Equal(status, response.Status);
        Assert.StartsWith("application/json", response.Headers["Content-Type"]);
        var error = JsonDocument.Parse(response.Body).RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        return error;
    }

    [Theory]
    [InlineData("GET /v1/models HTTP/1.1 extra\r\n\r\n")]
    [InlineData("\u0001\u0002 nonsense\r\n\r\n")]
    [InlineData("GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n")]
    [InlineData("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")]
    public async Task A_request_kestrel_cannot_parse_is_a_400_with_the_error_object(string request)
    {
        var responses = await RawHttp.SendAsync(fixture.BaseAddress, request);
        ErrorOf(Assert.Single(responses), 400, "invalid_http");
    }

    [Fact]
    public async Task A_request_line_over_the_limit_is_a_414_and_headers_over_it_a_431()
    {
        var longLine = await RawHttp.SendAsync(fixture.BaseAddress, $"GET /v1/models?q={new string('a', 9000)} HTTP/1.1\r\nHost: {Host}\r\n\r\n");
        Assert.Contains("8192 bytes", ErrorOf(Assert.Single(longLine), 414, "request_line_too_long").GetProperty("message").GetString());
        var bigHeaders = await RawHttp.SendAsync(fixture.BaseAddress, $"GET /v1/models HTTP/1.1\r\nHost: {Host}\r\nX-Big: {new string('b', 40000)}\r\n\r\n");
        ErrorOf(Assert.Single(bigHeaders), 431, "headers_too_large");
    }

    [Fact]
    public async Task A_malformed_request_after_a_good_one_on_the_same_connection_is_answered_after_it_untouched()
    {
        var responses = await RawHttp.SendAsync(fixture.BaseAddress,
            $"GET /v1/models HTTP/1.1\r\nHost: {Host}\r\nAuthorization: Bearer {GatewayFixture.Key}\r\n\r\n" +
            "GET /v1/models HTTP/1.1 extra\r\n\r\n");
        Assert.Equal(2, responses.Count);
        Assert.Equal(200, responses[0].Status);
        Assert.Equal("list", JsonDocument.Parse(responses[0].Body).RootElement.GetProperty("object").GetString());
        ErrorOf(responses[1], 400, "invalid_http");
    }

    [Fact]
    public async Task The_rejections_are_counted_in_the_metrics()
    {
        await RawHttp.SendAsync(fixture.BaseAddress, "GET /v1/models HTTP/1.1 extra\r\n\r\n");
        using var client = fixture.Client();
        string metrics = await (await client.GetAsync("/metrics")).Content.ReadAsStringAsync();
        Assert.Contains(metrics.Split('\n'), line => line.StartsWith("gpt2o_http_rejected_total{code=\"400\"}", StringComparison.Ordinal));
    }

    /// <summary>Headers that arrive too slowly: Kestrel's own 408, on a plain Kestrel app with a one-second limit.</summary>
    [Fact]
    public async Task Headers_that_arrive_too_slowly_are_a_408_with_the_error_object()
    {
        var builder = WebApplication.CreateSlimBuilder();
        int port = GatewayFixture.FreePort();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}").ConfigureKestrel(o =>
        {
            o.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(1);
            KestrelRejections.Configure(o);
        });
        await using var app = builder.Build();
        app.UseKestrelRejectionBodies();
        app.MapGet("/", () => "ok");
        await app.StartAsync();
        try
        {
            var server = new Uri($"http://127.0.0.1:{port}");
            var ok = await RawHttp.SendAsync(server, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            Assert.Equal("ok", Assert.Single(ok).Body);
            var slow = await RawHttp.SendAsync(server, "GET / HTTP/1.1\r\nHost: x\r\n", timeout: TimeSpan.FromSeconds(15));
            Assert.Contains("1 s", ErrorOf(Assert.Single(slow), 408, "request_timeout").GetProperty("message").GetString());
        }
        finally { await app.StopAsync(); }
    }
}
