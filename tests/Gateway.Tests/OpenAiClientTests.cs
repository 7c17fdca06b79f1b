using System.Diagnostics;
using System.Text.Json;
using Gpt2Orleans.Gateway.Tests.Support;
using Gpt2Orleans.Tests.Shared;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>
/// Compatibility with a client nobody here wrote: the official <c>openai</c> npm package (installed by ./test.sh in
/// tests/tools) runs a completion, a streamed completion and a streamed chat completion against the gateway and
/// gets the same text as the non-streamed calls (sampled, with a seed), and the same as this test's own HTTP call;
/// its embeddings (base64) are the float ones; its structured-output helpers get a json_schema reply that parses and fits, whole and streamed; and a required
/// tool call comes back as tool_calls (whole and streamed alike), whose result it sends back for a final answer.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class OpenAiClientTests(GatewayFixture fixture)
{
    [Fact]
    public async Task The_official_openai_client_gets_the_same_text_streamed_and_whole()
    {
        _ = ToolPaths.OpenAiClient;
        string script = Path.Combine(Repository.Tools, "openai-compat.mjs");
        var start = new ProcessStartInfo("node", [script, fixture.BaseAddress.ToString().TrimEnd('/'), GatewayFixture.Key, GatewayFixture.Model])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repository.Tools,
        };
        using var node = Process.Start(start)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try { await node.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { node.Kill(entireProcessTree: true); throw new TimeoutException("the openai client did not finish in 120 s"); }
        Assert.True(node.ExitCode == 0, $"the openai client saw a difference or failed (exit {node.ExitCode}): {await stdout} {await stderr}");

        var result = JsonDocument.Parse(await stdout).RootElement;
        using var client = fixture.Client();
        var ours = await ReadJson(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, max_tokens = 24, temperature = 0.9, seed = 1234, prompt = "The city at night was" })));
        Assert.Equal(ours.GetProperty("choices")[0].GetProperty("text").GetString(), result.GetProperty("completion").GetString());
        Assert.Contains(GatewayFixture.Model, result.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        Assert.True(result.GetProperty("chatUsage").GetProperty("completion_tokens").GetInt32() > 0);
        // Its embeddings (base64, decoded by the client) are ours as floats.
        var floats = await ReadJson(await client.PostAsync("/v1/embeddings", Json(new { model = GatewayFixture.Model, input = "The city at night was" })));
        Assert.Equal(floats.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()),
            result.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()), (a, b) => Math.Abs(a - b) <= 1e-4f); // batch shapes round differently
    }
}
