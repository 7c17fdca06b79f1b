using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Cli.Benchmark;

/// <summary>One stream as its reader saw it: time to its first token, and its decode rate after that (tokens after the first ÷ the time from the first to the last).</summary>
public sealed record StreamTiming(double TimeToFirstTokenSeconds, int Tokens, double DecodeTokensPerSecond);

/// <summary>
/// One greedy stream of a fresh prompt (its own token ids each time, so no run finds its prompt in the prefix cache),
/// read either through the HTTP API (a streaming completion: gateway, grains, Orleans) or straight from the same
/// engine in the same process. Both ask for the same thing: the prompt's ids, <c>newTokens</c> tokens, no end-of-text stop.
/// </summary>
public sealed class StreamedDecode(HttpClient http, string model, GenerationEngine engine, int promptTokens, int newTokens)
{
    private int _prompts;

    private int[] NextPrompt()
    {
        int p = Interlocked.Increment(ref _prompts);
        return Enumerable.Range(0, promptTokens).Select(i => 1000 + (p * 7919 + i * 37) % 40000).ToArray();
    }

    public async Task<StreamTiming> ThroughHttpAsync()
    {
        var body = JsonSerializer.Serialize(new { model, prompt = NextPrompt(), max_tokens = newTokens, temperature = 0, ignore_eos = true, stream = true,
            stream_options = new { include_usage = true } });
        var watch = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        // A token whose text is an incomplete UTF-8 character sends no chunk: the span from the first to the last still covers every step.
        var read = await CompletionStream.ReadAsync(response, watch);
        return Timing(read.FirstToken ?? throw new InvalidOperationException("the stream carried no token"), read.LastToken, read.Tokens);
    }

    public async Task<StreamTiming> InProcessAsync()
    {
        var config = new GenerationConfig { MaxNewTokens = newTokens, DoSample = false, EosTokenIds = [] };
        var watch = Stopwatch.StartNew();
        double? first = null;
        double last = 0;
        int tokens = 0;
        await foreach (var _ in engine.SubmitAsync(new EngineRequest("bench-direct", NextPrompt(), config)))
        {
            first ??= watch.Elapsed.TotalSeconds;
            last = watch.Elapsed.TotalSeconds;
            tokens++;
        }
        return Timing(first ?? throw new InvalidOperationException("the engine produced no token"), last, tokens);
    }

    private static StreamTiming Timing(double first, double last, int tokens) =>
        new(first, tokens, tokens > 1 && last > first ? (tokens - 1) / (last - first) : 0);
}
