using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>A silo whose second model cannot load: a model that works plus one whose folder does not exist.</summary>
public sealed class BrokenModelFixture : GatewayFixture
{
    public const string Broken = "broken";

    protected override IEnumerable<string> SiloArguments =>
        ["--model", $"{Model}={ModelFolder}", "--model", $"{Broken}={Path.Combine(Path.GetTempPath(), "gpt2o-no-such-model-" + Guid.NewGuid().ToString("N"))}"];
}

/// <summary>A model that fails to load keeps the silo not ready and is a 503 that says why, while the other model serves.</summary>
public sealed class BrokenModelTests(BrokenModelFixture fixture) : IClassFixture<BrokenModelFixture>
{
    [Fact]
    public async Task A_model_that_cannot_load_is_not_ready_and_answers_503_with_the_reason()
    {
        using var client = fixture.Client();
        var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var body = await ReadJson(ready);
        Assert.Equal("loading", body.GetProperty("status").GetString());
        Assert.Contains(body.GetProperty("waiting").EnumerateArray(), w => w.GetString()!.StartsWith(BrokenModelFixture.Broken + "@", StringComparison.Ordinal));

        var error = await ReadError(await client.PostAsync("/v1/completions", Json(new { model = BrokenModelFixture.Broken, prompt = "Hi", max_tokens = 2 })),
            HttpStatusCode.ServiceUnavailable);
        Assert.Contains("failed to load", error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hi", max_tokens = 2 }))).StatusCode);
    }
}
