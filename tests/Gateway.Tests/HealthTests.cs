using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;

namespace Gpt2Orleans.Gateway.Tests;

[Collection(GatewayCollection.Name)]
public sealed class HealthTests(GatewayFixture fixture)
{
    [Fact]
    public async Task Health_answers_and_readiness_waits_for_the_loaded_model()
    {
        using var client = fixture.Client(key: null); // probes need no key
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        HttpResponseMessage ready;
        while ((ready = await client.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Contains("ready", await ready.Content.ReadAsStringAsync());
    }
}
