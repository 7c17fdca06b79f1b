using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Gpt2Orleans.Cli.Benchmark;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Silo;
using Spectre.Console;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o bench-lifecycle</c>: the model lifecycle on the single-machine app started in this process, with two GPT-2
/// small checkpoints (random weights, two seeds) written to a temporary folder. It registers one through the admin
/// API and measures, over HTTP with a streaming completion (32-token prompt): the time to first token of a cold model
/// (loaded on that request), of a warm one, and of the first request after a hot swap to the other checkpoint (the
/// swap time: the new version loads beside the old); and the memory a loaded model holds (its replica's weights and
/// KV pool as the silo reports them, and the process's working set before and after the cold load). Its bound: the
/// checkpoint's bytes over the rate this machine reads that file, measured in the same run.
/// </summary>
public static class LifecycleBenchCommand
{
    private static readonly Option<int> Repeats = new("--repeats") { Description = "cold loads, warm requests and swaps measured (ranges reported)", DefaultValueFactory = _ => 5 };
    private static readonly Option<int> KvCacheMb = new("--kv-cache-mb") { Description = "each model's KV pool", DefaultValueFactory = _ => 256 };
    private const string Key = "g2o-bench-key-0123456789", AdminKey = "g2o-bench-admin-0123456789", Name = "lifecycle";

    public static Command Create()
    {
        var command = new Command("bench-lifecycle", "Cold and warm time to first token of a registered GPT-2 small, hot-swap time and memory per loaded model");
        foreach (var option in new Option[] { Repeats, KvCacheMb, CommonOptions.Json }) command.Add(option);
        command.SetAction(parse => Run(parse).GetAwaiter().GetResult());
        return command;
    }

    private sealed record Result(double ReadGBps, long CheckpointBytes, List<double> Cold, List<double> Warm, List<double> Swap, long ReplicaBytes, long WorkingSetGrowth);

    private static async Task<int> Run(ParseResult parse)
    {
        bool json = parse.GetValue(CommonOptions.Json);
        int repeats = parse.GetValue(Repeats);
        if (repeats < 1) throw new ArgumentException("--repeats: must be at least 1");
        string data = Path.Combine(Path.GetTempPath(), "gpt2o-bench-lifecycle-" + Guid.NewGuid().ToString("N"));
        string[] checkpoints = [Path.Combine(data, "a"), Path.Combine(data, "b")];
        try
        {
            if (!json) Console.Error.WriteLine("writing two GPT-2 small checkpoints (random weights)…");
            for (int i = 0; i < checkpoints.Length; i++)
                using (var model = Gpt2LMHeadModel.CreateRandom(Gpt2Config.Default, seed: 1 + i))
                    model.SavePretrained(checkpoints[i]);
            string weights = Path.Combine(checkpoints[0], "model.safetensors");
            long bytes = new FileInfo(weights).Length;
            double readGBps = ReadRate(weights);

            var url = new Uri($"http://127.0.0.1:{BenchSilo.FreePort()}");
            await using var app = SiloApp.Build([
                "--model", "pinned=default", // a model the silo starts with, beside the registered one that is measured
                "--data", Path.Combine(data, "silo"), "--kv-cache-mb", parse.GetValue(KvCacheMb).ToString(),
                "--silo-port", BenchSilo.FreePort().ToString(), "--gateway-port", BenchSilo.FreePort().ToString(), "--urls", url.ToString(),
                "--GPT2O_API_KEY", Key, "--GPT2O_ADMIN_KEY", AdminKey, "--Logging:LogLevel:Default", "Warning", "--Logging:LogLevel:Gpt2Orleans.Grains.Models.ModelHost", "Information",
                "--Logging:Console:LogToStandardErrorThreshold", "Trace",
            ]);
            await app.StartAsync();
            try
            {
                await BenchSilo.WaitForKey(url, Key);
                using var http = BenchSilo.Client(url, Key);
                using var admin = BenchSilo.Client(url, AdminKey);
                await Send(admin, HttpMethod.Post, "/admin/models", new { name = Name, source = checkpoints[0] });
                var result = await Measure(http, admin, checkpoints, repeats, json, readGBps, bytes);
                Report(json, result);
                return 0;
            }
            finally { await app.StopAsync(); }
        }
        finally
        {
            try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }

    private static async Task<Result> Measure(HttpClient http, HttpClient admin, string[] checkpoints, int repeats, bool json, double readGBps, long bytes)
    {
        var cold = new List<double>();
        var warm = new List<double>();
        var swap = new List<double>();
        long workingSetGrowth = 0, replicaBytes = 0;
        int source = 0;
        for (int i = 0; i < repeats; i++)
        {
            if (!json) Console.Error.WriteLine($"round {i + 1} of {repeats}: cold, warm, swap…");
            await Send(admin, HttpMethod.Post, $"/admin/models/{Name}/unload", null);
            await WaitUntil(admin, m => m.GetProperty("replicas").GetArrayLength() == 0);
            GC.Collect();
            long before = Process.GetCurrentProcess().WorkingSet64;
            cold.Add(await TimeToFirstToken(http));
            workingSetGrowth = Math.Max(workingSetGrowth, Process.GetCurrentProcess().WorkingSet64 - before);
            for (int w = 0; w < 3; w++) warm.Add(await TimeToFirstToken(http));
            var loaded = await WaitUntil(admin, m => m.GetProperty("state").GetString() == "loaded");
            replicaBytes = loaded.GetProperty("replicas").EnumerateArray().Max(r => r.GetProperty("memory_mb").GetInt64()) << 20;

            source = 1 - source; // the other checkpoint: a new version
            var watch = Stopwatch.StartNew();
            var updated = await Send(admin, HttpMethod.Put, $"/admin/models/{Name}", new { source = checkpoints[source] });
            int version = updated.GetProperty("version").GetInt32();
            await TimeToFirstToken(http);
            swap.Add(watch.Elapsed.TotalSeconds);
            await WaitUntil(admin, m => m.GetProperty("replicas").EnumerateArray().All(r => r.GetProperty("version").GetInt32() == version));
        }
        return new Result(readGBps, bytes, cold, warm, swap, replicaBytes, workingSetGrowth);
    }

    /// <summary>Seconds from sending a streaming completion (32 prompt tokens, 8 new) to its first token.</summary>
    private static async Task<double> TimeToFirstToken(HttpClient http)
    {
        var body = JsonSerializer.Serialize(new { model = Name, prompt = Enumerable.Range(1000, 32).ToArray(), max_tokens = 8, temperature = 0, stream = true });
        var watch = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"completion: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double first = -1;
        while (await reader.ReadLineAsync() is { } line)
            if (first < 0 && line.StartsWith("data: {", StringComparison.Ordinal)) first = watch.Elapsed.TotalSeconds;
        return first >= 0 ? first : throw new InvalidOperationException("the stream held no token");
    }

    private static async Task<JsonElement> Send(HttpClient http, HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{method} {path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<JsonElement> WaitUntil(HttpClient admin, Func<JsonElement, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (true)
        {
            var model = await Send(admin, HttpMethod.Get, $"/admin/models/{Name}", null);
            if (done(model)) return model;
            if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"model state did not settle: {model.GetRawText()}");
            await Task.Delay(50);
        }
    }

    /// <summary>How fast this machine reads the checkpoint file now (best of three; the page cache holds it, as it does for a reload).</summary>
    private static double ReadRate(string file)
    {
        var buffer = new byte[16 << 20];
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
                while (stream.Read(buffer) > 0) { }
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return new FileInfo(file).Length / best / 1e9;
    }

    private static string Range(List<double> seconds) =>
        $"{Percentiles.Of([.. seconds]).P50 * 1e3:F0} ms (range {seconds.Min() * 1e3:F0}–{seconds.Max() * 1e3:F0})";

    private static void Report(bool json, Result r)
    {
        double boundMs = r.CheckpointBytes / (r.ReadGBps * 1e9) * 1e3;
        if (json)
        {
            JsonOutput.Write(new
            {
                checkpoint_mb = r.CheckpointBytes >> 20, read_gbps = r.ReadGBps, read_bound_ms = boundMs,
                cold_ttft_ms = r.Cold.Select(s => s * 1e3), warm_ttft_ms = r.Warm.Select(s => s * 1e3), swap_ms = r.Swap.Select(s => s * 1e3),
                replica_mb = r.ReplicaBytes >> 20, working_set_growth_mb = r.WorkingSetGrowth >> 20,
            });
            return;
        }
        var table = new Table().AddColumns("GPT-2 small, registered, over HTTP", "p50 (range)");
        table.AddRow("time to first token, cold (load on demand)", Range(r.Cold));
        table.AddRow("time to first token, warm", Range(r.Warm));
        table.AddRow("hot swap: update → first token of the new version", Range(r.Swap));
        table.AddRow("memory per loaded model (weights + KV pool, as reported)", $"{r.ReplicaBytes >> 20} MB");
        table.AddRow("working set growth over a cold load (largest)", $"{r.WorkingSetGrowth >> 20} MB");
        table.AddRow("bound: checkpoint read", $"{r.CheckpointBytes >> 20} MB at {r.ReadGBps:F1} GB/s = {boundMs:F0} ms");
        AnsiConsole.Write(table);
        AnsiConsole.WriteLine($"{Environment.ProcessorCount} cores; the client runs in the same process as the silo");
    }
}
