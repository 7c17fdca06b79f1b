using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Gpt2Orleans.Cli.Benchmark;

/// <summary>What a load run saw: throughput, latencies, and everything that went wrong.</summary>
public sealed record GatewayLoadResult(
    int Clients, double Seconds, int Requests, long Tokens, int Refused, int RefusedWithoutRetryAfter, IReadOnlyList<string> Errors,
    int Mismatches, IReadOnlyList<string> MismatchSamples, Percentiles RequestLatency, Percentiles TimeToFirstToken,
    IReadOnlyList<(double Seconds, long WorkingSetBytes, long ManagedBytes)> Memory)
{
    public double TokensPerSecond => Tokens / Seconds;
    public double RequestsPerSecond => Requests / Seconds;
}

/// <summary>
/// Many concurrent streaming clients against a running gateway, for a fixed time, over loopback HTTP. Each client
/// has its own prompt and seed, and the text of every stream it reads must equal the non-streamed completion of the
/// same request, fetched once before the run: a lost, duplicated or reordered token shows as a mismatch. A 429 must
/// carry Retry-After (the client then waits as told); anything else that fails is an error. Memory is sampled as it runs.
/// </summary>
public sealed class GatewayLoad(Uri baseAddress, string apiKey, string model, int maxTokens = 32)
{
    private static readonly string[] Openings =
        ["The history of", "In the morning the", "A recipe for", "The best way to", "Scientists have found", "Once upon a time", "The city council", "My favourite"];

    private HttpClient NewClient()
    {
        var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = baseAddress, Timeout = TimeSpan.FromMinutes(5) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return client;
    }

    private object Request(int clientIndex, bool stream) => new
    {
        model, prompt = $"{Openings[clientIndex % Openings.Length]} {clientIndex}", max_tokens = maxTokens, temperature = 0.8, seed = 1000 + clientIndex,
        ignore_eos = true, stream, stream_options = stream ? new { include_usage = true } : null,
    };

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    public async Task<GatewayLoadResult> RunAsync(int clients, TimeSpan duration, Func<long>? managedBytes = null, CancellationToken cancellationToken = default)
    {
        using var http = NewClient();
        // The references are fetched all at once, as the streams will run: batched with each other.
        var expected = await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            var response = await http.PostAsync("/v1/completions", Json(Request(c, stream: false)), cancellationToken);
            response.EnsureSuccessStatusCode();
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            return body.RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
        }));

        var latencies = new List<double>();
        var ttfts = new List<double>();
        var errors = new List<string>();
        var mismatchSamples = new List<string>(); // the first few, to show what differed
        var memory = new List<(double, long, long)>();
        int requests = 0, refused = 0, refusedBare = 0, mismatches = 0;
        long tokens = 0;
        var watch = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stop.CancelAfter(duration);

        async Task Client(int c)
        {
            while (!stop.IsCancellationRequested)
            {
                double started = watch.Elapsed.TotalSeconds;
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(Request(c, stream: true)) };
                    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                    if (response.StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        var retry = response.Headers.RetryAfter?.Delta;
                        lock (errors) { refused++; if (retry is null) refusedBare++; }
                        await Task.Delay(retry ?? TimeSpan.FromSeconds(1), stop.Token);
                        continue;
                    }
                    if (!response.IsSuccessStatusCode)
                    {
                        string error = $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}";
                        lock (errors) errors.Add(error);
                        continue;
                    }
                    var (text, count, firstToken, _) = await CompletionStream.ReadAsync(response, watch, cancellationToken);
                    double finished = watch.Elapsed.TotalSeconds;
                    lock (errors)
                    {
                        requests++;
                        tokens += count;
                        latencies.Add(finished - started);
                        if (firstToken is { } first) ttfts.Add(first - started);
                        if (text != expected[c])
                        {
                            mismatches++;
                            if (mismatchSamples.Count < 3) mismatchSamples.Add($"client {c}: expected {JsonSerializer.Serialize(expected[c])}, streamed {JsonSerializer.Serialize(text)}");
                        }
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
                catch (Exception e) when (e is HttpRequestException or IOException or JsonException)
                {
                    lock (errors) errors.Add(e.Message);
                }
            }
        }

        var all = Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(() => Client(c), cancellationToken)));
        while (!all.IsCompleted)
        {
            memory.Add((watch.Elapsed.TotalSeconds, Process.GetCurrentProcess().WorkingSet64, managedBytes?.Invoke() ?? GC.GetTotalMemory(false)));
            await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(5), cancellationToken));
        }
        await all;
        return new GatewayLoadResult(clients, watch.Elapsed.TotalSeconds, requests, tokens, refused, refusedBare, errors, mismatches, mismatchSamples,
            Percentiles.Of(latencies), Percentiles.Of(ttfts), memory);
    }
}
