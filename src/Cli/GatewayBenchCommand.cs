using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Gpt2Orleans.Cli.Benchmark;
using Gpt2Orleans.Grains.Models;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Silo;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o bench-gateway</c>: the single-machine default (a silo with the gateway co-hosted) started in this process
/// on loopback ports, then (1) the end-to-end overhead: one-token completions through HTTP + Orleans against the same
/// requests given straight to the engine, interleaved so both see the same machine; (2) a load run: many concurrent
/// streaming clients for a fixed time, each stream checked against the non-streamed result for its seed.
/// </summary>
public static class GatewayBenchCommand
{
    private static readonly Option<string> Model = new("--model") { Description = "a checkpoint folder, a hub repo id, or 'default' (random GPT-2 small)", DefaultValueFactory = _ => "default" };
    private static readonly Option<int> Clients = new("--clients") { DefaultValueFactory = _ => 64 };
    private static readonly Option<int> Seconds = new("--seconds") { DefaultValueFactory = _ => 60 };
    private static readonly Option<int> MaxTokens = new("--max-tokens") { DefaultValueFactory = _ => 32 };
    private static readonly Option<int> OverheadRequests = new("--overhead-requests") { DefaultValueFactory = _ => 300 };
    private static readonly Option<int> DecodeRuns = new("--decode-runs")
    {
        Description = "one-stream runs (32-token prompt, 128 new tokens, less for a short context) through HTTP and in process each, alternated between bandwidth probes; 0 skips them",
        DefaultValueFactory = _ => 3,
    };
    private static readonly Option<bool> BatchInvariant = new("--batch-invariant")
    {
        Description = "serve in batch-invariant mode, so each stream must equal its non-streamed reference exactly", DefaultValueFactory = _ => true,
    };
    private const string Key = "g2o-bench-key-0123456789", Name = "bench";

    public static Command Create()
    {
        var command = new Command("bench-gateway", "Overhead of the HTTP gateway + Orleans over the engine, and a load run of concurrent streaming clients");
        foreach (var option in new Option[] { Model, Clients, Seconds, MaxTokens, OverheadRequests, DecodeRuns, BatchInvariant, CommonOptions.Json }) command.Add(option);
        command.SetAction(parse => Run(parse).GetAwaiter().GetResult());
        return command;
    }

    private static async Task<int> Run(ParseResult parse)
    {
        bool json = parse.GetValue(CommonOptions.Json);
        if (parse.GetValue(DecodeRuns) < 0) throw new ArgumentException("--decode-runs must be 0 or more");
        string data = Path.Combine(Path.GetTempPath(), "gpt2o-bench-gateway-" + Guid.NewGuid().ToString("N"));
        var url = new Uri($"http://127.0.0.1:{BenchSilo.FreePort()}");
        string source = parse.GetValue(Model)!;
        if (Directory.Exists(source)) source = Path.GetFullPath(source);
        await using var app = SiloApp.Build([
            "--model", $"{Name}={source}", "--data", data, "--kv-cache-mb", "1024", "--max-running-sequences", "64",
            "--silo-port", BenchSilo.FreePort().ToString(), "--gateway-port", BenchSilo.FreePort().ToString(), "--urls", url.ToString(), "--GPT2O_API_KEY", Key,
            "--batch-invariant", parse.GetValue(BatchInvariant).ToString(), "--Logging:LogLevel:Default", "Warning",
            "--Logging:Console:LogToStandardErrorThreshold", "Trace", // logs to stderr: stdout is the table or the JSON
        ]);
        try
        {
            await app.StartAsync();
            var host = app.Services.GetRequiredService<ModelHost>();
            using var lease = await host.LeaseAsync(host.StaticModels[Name]); // a static model: held for the whole run anyway
            var hosted = lease.Model;
            await BenchSilo.WaitForKey(url, Key);
            if (!json) Console.Error.WriteLine("overhead: one-token completions, HTTP + Orleans against the engine in process…");
            var overhead = await Overhead(url, hosted.RequireGeneration(), parse.GetValue(OverheadRequests));
            OneStreamResult? oneStream = null;
            if (parse.GetValue(DecodeRuns) > 0)
            {
                if (!json) Console.Error.WriteLine("one stream: through HTTP and in process, alternated between bandwidth probes…");
                oneStream = await OneStream(url, hosted, parse.GetValue(DecodeRuns));
                // The bandwidth probe's 384 MB of arrays are garbage now; collected here, not counted in the load run's memory
                // (measured: its managed heap read 467 → 828 MB with them, 42 → 57 MB without the phase).
                System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
                GC.Collect();
            }
            if (!json) Console.Error.WriteLine($"load: {parse.GetValue(Clients)} streaming clients for {parse.GetValue(Seconds)} s…");
            var load = await new GatewayLoad(url, Key, Name, parse.GetValue(MaxTokens))
                .RunAsync(parse.GetValue(Clients), TimeSpan.FromSeconds(parse.GetValue(Seconds)));
            // The engine frees a finished stream's blocks on its next step and publishes its stats after it: give that
            // a moment (bounded) before calling what is still held a leak.
            var engine = hosted.RequireGeneration();
            for (var wait = System.Diagnostics.Stopwatch.StartNew(); engine.Stats.BlocksUsed > 0 && wait.Elapsed < TimeSpan.FromSeconds(5);) await Task.Delay(50);
            var kv = engine.Stats;
            Report(json, overhead, oneStream, load, kv.BlocksUsed, parse.GetValue(BatchInvariant));
            return load.Errors.Count == 0 && load.Mismatches == 0 && load.RefusedWithoutRetryAfter == 0 && kv.BlocksUsed == 0 ? 0 : 1;
        }
        finally
        {
            await app.StopAsync();
            try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }

    private sealed record OverheadResult(Percentiles Engine, Percentiles Http, Percentiles Added, Percentiles HttpFloor);

    private static async Task<OverheadResult> Overhead(Uri url, GenerationEngine engine, int requests)
    {
        using var http = BenchSilo.Client(url, Key);
        int[] prompt = [464, 3290, 286, 262, 995]; // the same token ids both ways, so neither pays for tokenizing
        var body = JsonSerializer.Serialize(new { model = Name, prompt, max_tokens = 1, temperature = 0 });
        var config = new GenerationConfig { MaxNewTokens = 1, EosTokenIds = [] };
        var direct = new List<double>();
        var viaHttp = new List<double>();
        var added = new List<double>();
        var floor = new List<double>();
        for (int i = -20; i < requests; i++) // the first 20 of each warm up
        {
            var watch = Stopwatch.StartNew();
            await foreach (var _ in engine.SubmitAsync(new EngineRequest("bench-direct", prompt, config))) { }
            double engineSeconds = watch.Elapsed.TotalSeconds;
            watch.Restart();
            var response = await http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            await response.Content.ReadAsStringAsync();
            response.EnsureSuccessStatusCode();
            double httpSeconds = watch.Elapsed.TotalSeconds;
            watch.Restart();
            (await http.GetAsync("/healthz")).EnsureSuccessStatusCode(); // the HTTP round trip alone: no grain call
            double floorSeconds = watch.Elapsed.TotalSeconds;
            if (i < 0) continue;
            floor.Add(floorSeconds);
            direct.Add(engineSeconds);
            viaHttp.Add(httpSeconds);
            added.Add(httpSeconds - engineSeconds);
        }
        return new OverheadResult(Percentiles.Of(direct), Percentiles.Of(viaHttp), Percentiles.Of(added), Percentiles.Of(floor));
    }

    /// <summary>The one-stream shape both ways: decode rate against the bandwidth bound of its moment, and time to first token.</summary>
    private sealed record OneStreamResult(int PromptTokens, int NewTokens, long WeightBytes, IReadOnlyList<BracketedRun> Http, IReadOnlyList<BracketedRun> Engine,
        Percentiles HttpTtft, Percentiles EngineTtft);

    private static async Task<OneStreamResult> OneStream(Uri url, HostedModel hosted, int runs)
    {
        // The shape (32 prompt tokens, 128 new), within a smaller model's context.
        int positions = (int)hosted.Model.Config.NPositions, promptTokens = Math.Clamp(positions / 4, 1, 32), newTokens = Math.Clamp(positions - promptTokens, 1, 128);
        using var http = BenchSilo.Client(url, Key);
        var decode = new StreamedDecode(http, Name, hosted.RequireGeneration(), promptTokens, newTokens);
        var httpTtft = new List<double>();
        var engineTtft = new List<double>();
        // On its own thread: each run blocks on its stream, and a blocked pool thread would slow the server it reads from.
        return await Task.Factory.StartNew(() =>
        {
            for (int warm = 0; warm < 2; warm++) { decode.ThroughHttpAsync().GetAwaiter().GetResult(); decode.InProcessAsync().GetAwaiter().GetResult(); }
            double Rate(StreamTiming timing, List<double> ttfts) { ttfts.Add(timing.TimeToFirstTokenSeconds); return timing.DecodeTokensPerSecond; }
            long weightBytes = hosted.Model.WeightBytes;
            var measured = BracketedDecode.Alternated(new BandwidthProbe(), weightBytes, runs, [
                () => Rate(decode.ThroughHttpAsync().GetAwaiter().GetResult(), httpTtft),
                () => Rate(decode.InProcessAsync().GetAwaiter().GetResult(), engineTtft)]);
            return new OneStreamResult(promptTokens, newTokens, weightBytes, measured[0], measured[1], Percentiles.Of(httpTtft), Percentiles.Of(engineTtft));
        }, TaskCreationOptions.LongRunning);
    }

    private static object RunsJson(IReadOnlyList<BracketedRun> runs) =>
        runs.Select(r => new { decode_tokens_per_second = r.TokensPerSecond, bandwidth_gbps = r.BandwidthGBps, fraction_of_bound = r.FractionOfBound });

    private static void Report(bool json, OverheadResult overhead, OneStreamResult? oneStream, GatewayLoadResult load, int kvBlocksUsedAfter, bool batchInvariant)
    {
        if (json)
        {
            JsonOutput.Write(new
            {
                overhead = new { engine_p50_ms = overhead.Engine.P50 * 1e3, engine_p99_ms = overhead.Engine.P99 * 1e3, http_p50_ms = overhead.Http.P50 * 1e3,
                    http_p99_ms = overhead.Http.P99 * 1e3, added_p50_ms = overhead.Added.P50 * 1e3, added_p99_ms = overhead.Added.P99 * 1e3,
                    http_floor_p50_ms = overhead.HttpFloor.P50 * 1e3, http_floor_p99_ms = overhead.HttpFloor.P99 * 1e3 },
                one_stream = oneStream is null ? null : new { prompt_tokens = oneStream.PromptTokens, new_tokens = oneStream.NewTokens, weight_bytes = oneStream.WeightBytes, batch_invariant = batchInvariant,
                    http = RunsJson(oneStream.Http), http_ttft_p50_s = oneStream.HttpTtft.P50, engine = RunsJson(oneStream.Engine), engine_ttft_p50_s = oneStream.EngineTtft.P50 },
                load = new { clients = load.Clients, seconds = load.Seconds, requests = load.Requests, tokens = load.Tokens, tokens_per_second = load.TokensPerSecond, requests_per_second = load.RequestsPerSecond,
                    latency_p50_s = load.RequestLatency.P50, latency_p99_s = load.RequestLatency.P99, ttft_p50_s = load.TimeToFirstToken.P50, ttft_p99_s = load.TimeToFirstToken.P99,
                    refused_429 = load.Refused, refused_without_retry_after = load.RefusedWithoutRetryAfter, errors = load.Errors.Count, mismatches = load.Mismatches,
                    memory = load.Memory.Select(m => new { seconds = m.Seconds, working_set_mb = m.WorkingSetBytes >> 20, managed_mb = m.ManagedBytes >> 20 }),
                    kv_blocks_used_after = kvBlocksUsedAfter },
            });
            return;
        }
        var table = new Table().AddColumns("one-token completion", "p50", "p99");
        table.AddRow("engine in process", $"{overhead.Engine.P50 * 1e3:F2} ms", $"{overhead.Engine.P99 * 1e3:F2} ms");
        table.AddRow("HTTP + gateway + Orleans", $"{overhead.Http.P50 * 1e3:F2} ms", $"{overhead.Http.P99 * 1e3:F2} ms");
        table.AddRow("HTTP round trip alone (GET /healthz)", $"{overhead.HttpFloor.P50 * 1e3:F2} ms", $"{overhead.HttpFloor.P99 * 1e3:F2} ms");
        table.AddRow("[bold]added per request[/]", $"[bold]{overhead.Added.P50 * 1e3:F2} ms[/]", $"{overhead.Added.P99 * 1e3:F2} ms");
        AnsiConsole.Write(table);
        if (oneStream is not null)
        {
            var decode = new Table().AddColumns($"one stream, {oneStream.PromptTokens}-token prompt, {oneStream.NewTokens} new tokens", "decode", "time to first token p50");
            decode.AddRow("HTTP + gateway + Orleans", BracketedDecode.Describe(oneStream.Http), $"{oneStream.HttpTtft.P50 * 1e3:F0} ms");
            decode.AddRow("engine in process", BracketedDecode.Describe(oneStream.Engine), $"{oneStream.EngineTtft.P50 * 1e3:F0} ms");
            AnsiConsole.Write(decode);
            AnsiConsole.WriteLine($"decode bound = {oneStream.WeightBytes / 1e6:F0} MB of weights ÷ the bandwidth probed around each run; batch-invariant: {batchInvariant}" +
                (batchInvariant ? " (the fast kernels are off: pass --batch-invariant false for the serving default's speed)" : ""));
        }
        var run = new Table().AddColumns("load run", "");
        run.AddRow("streaming clients × seconds", $"{load.Clients} × {load.Seconds:F0}");
        run.AddRow("streams finished", $"{load.Requests} ({load.RequestsPerSecond:F1}/s)");
        run.AddRow("[bold]output tokens/s[/]", $"[bold]{load.TokensPerSecond:F1}[/]");
        run.AddRow("stream latency p50 / p99", $"{load.RequestLatency.P50:F2} / {load.RequestLatency.P99:F2} s");
        run.AddRow("time to first token p50 / p99", $"{load.TimeToFirstToken.P50:F2} / {load.TimeToFirstToken.P99:F2} s");
        run.AddRow("429s (of them without Retry-After)", $"{load.Refused} ({load.RefusedWithoutRetryAfter})");
        run.AddRow("other errors", $"{load.Errors.Count}");
        run.AddRow("streams whose text ≠ the non-streamed result", $"{load.Mismatches}");
        run.AddRow("working set, first → last sample", $"{load.Memory[0].WorkingSetBytes >> 20} → {load.Memory[^1].WorkingSetBytes >> 20} MB");
        run.AddRow("managed heap, first → last sample", $"{load.Memory[0].ManagedBytes >> 20} → {load.Memory[^1].ManagedBytes >> 20} MB");
        run.AddRow("KV blocks in use after the run", $"{kvBlocksUsedAfter}");
        AnsiConsole.Write(run);
        foreach (var error in load.Errors.Distinct().Take(5)) AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {error}");
        foreach (var sample in load.MismatchSamples) AnsiConsole.MarkupLineInterpolated($"[red]mismatch:[/] {sample}");
        AnsiConsole.WriteLine($"{Environment.ProcessorCount} cores; the clients run in the same process as the silo");
    }
}
