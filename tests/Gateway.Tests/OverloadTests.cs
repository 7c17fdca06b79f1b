using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>A silo whose engine runs one sequence and lets one more wait.</summary>
public sealed class TinyEngineFixture : GatewayFixture
{
    protected override IEnumerable<string> SiloArguments =>
        ["--model", $"{Model}={ModelFolder}", "--max-running-sequences", "1", "--max-waiting-requests", "1"];
}

/// <summary>An engine with a full queue answers 429 with Retry-After over HTTP, and serves again once it drains.</summary>
public sealed class OverloadTests(TinyEngineFixture fixture) : IClassFixture<TinyEngineFixture>
{
    [Fact]
    public async Task A_full_engine_queue_is_a_429_with_retry_after_then_recovers()
    {
        using var client = fixture.Client();
        // Warm the path (grain activations, JIT) first: a cold first request would otherwise give the first stream
        // time to finish before the rest of the burst arrives, letting a third one in. The streams run 100 tokens
        // (the tiny model's context is 128) for the same reason.
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Warm", max_tokens = 1 }))).StatusCode);
        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => client.PostAsync("/v1/completions",
            Json(new { model = GatewayFixture.Model, prompt = $"Story number {i}", max_tokens = 100, ignore_eos = true, stream = true, stream_options = new { include_usage = true } }))));
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        var served = responses.Where(r => r.StatusCode == HttpStatusCode.OK).ToList();
        Assert.Equal(responses.Length, refused.Count + served.Count);
        Assert.NotEmpty(refused);
        Assert.InRange(served.Count, 1, 2); // one running, at most one waiting
        foreach (var response in refused)
        {
            Assert.Equal("rate_limit_exceeded", (await ReadError(response, HttpStatusCode.TooManyRequests)).GetProperty("code").GetString());
            Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        }
        foreach (var response in served) Assert.Equal(100, (await ReadEvents(response))[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var again = await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hi", max_tokens = 2 }));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        // The refusals are in the HTTP request metrics by status.
        Assert.Contains((await client.GetStringAsync("/metrics")).Split('\n'), line =>
            line.StartsWith("http_requests_received_total{code=\"429\",method=\"POST\"", StringComparison.Ordinal) && line.Contains("endpoint=\"/v1/completions\""));
    }
}
