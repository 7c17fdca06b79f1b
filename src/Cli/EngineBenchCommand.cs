using System.CommandLine;
using System.Diagnostics;
using Gpt2Orleans.Cli.Benchmark;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Constraints;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Tokenization;
using Spectre.Console;
using static TorchSharp.torch;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o bench-engine</c>: the continuous-batching engine under load, GPT-2 small with random weights: aggregate
/// output tokens/s at several concurrencies (each stream a distinct prompt), time to first token and inter-token
/// latency percentiles, a follow-up turn of a long conversation with its KV kept, prefix-cached or recomputed,
/// KV memory per token and fragmentation, and what constrained decoding (a JSON Schema) adds to a step at 1 and 32
/// streams. Printed beside the compute bound measured in the same run.
/// </summary>
public static class EngineBenchCommand
{
    private static readonly Option<int[]> Streams = new("--streams") { DefaultValueFactory = _ => [1, 4, 16, 32, 64], AllowMultipleArgumentsPerToken = true };
    private static readonly Option<int> PromptTokens = new("--prompt-tokens") { DefaultValueFactory = _ => 128 };
    private static readonly Option<int> NewTokens = new("--new-tokens") { DefaultValueFactory = _ => 128 };
    private static readonly Option<int> ConversationTokens = new("--conversation-tokens") { DefaultValueFactory = _ => 900 };
    private static readonly Option<int> BracketedRuns = new("--bracketed-runs")
    {
        Description = "one-stream runs each judged against the bandwidth probed just before and after it (0: none)", DefaultValueFactory = _ => 5,
    };

    public static Command Create()
    {
        var command = new Command("bench-engine", "Throughput and latency of the continuous-batching engine against this machine's compute bound");
        CommonOptions.AddTo(command);
        CommonOptions.AddEngineTo(command);
        foreach (var option in new Option[] { Streams, PromptTokens, NewTokens, ConversationTokens, BracketedRuns }) command.Add(option);
        command.SetAction(parse => Run(parse).GetAwaiter().GetResult());
        return command;
    }

    private static async Task<int> Run(ParseResult parse)
    {
        bool json = parse.GetValue(CommonOptions.Json);
        var dtype = DeviceSpec.ParseDType(parse.GetValue(CommonOptions.DType));
        if (parse.GetValue(BracketedRuns) < 0) throw new ArgumentException("--bracketed-runs must be 0 or more");
        Gpt2Orleans.Inference.Native.TorchNativeLoader.EnsureLoaded();
        var quantization = CommonOptions.Quantization(parse);
        using var model = DefaultModel.Create(new ModelLoadOptions { Device = parse.GetValue(CommonOptions.Device)!, DType = dtype, Quantization = quantization });
        long parameters = model.ParameterCount;
        GC.Collect();
        long residentLoaded = Environment.WorkingSet; // the process with the model loaded, before the engine's KV pool: weights and runtime
        int promptTokens = parse.GetValue(PromptTokens), newTokens = parse.GetValue(NewTokens);
        using var engine = new GenerationEngine(model, Gpt2Tokenizer.Default, new EngineOptions
        {
            ModelName = DefaultModel.Name, KvCacheBytes = 4L << 30, MaxRunningSequences = 64, KvDType = CommonOptions.KvDTypeOf(parse),
        });

        // Warm-up: JIT, libtorch's first calls and the first touch of the KV pool's pages are not part of any figure.
        // Long enough for .NET's tiered JIT to promote the per-step code (30 calls, then a background recompile):
        // with 8 steps, a one-stream run still showed a dozen 50–160 ms steps in its first hundred.
        await Load(engine, 2, promptTokens, 128);
        long resident = Environment.WorkingSet; // the process's resident set once loaded and warmed up: weights, runtime, touched KV
        // The machine's bounds only now: their probe's arrays, once freed, stay in the process's resident set (measured:
        // float32's loaded set 731 → 1143 MB with them measured first, int4's 253 → 1198).
        var bounds = MachineBounds.Measure([ScalarType.Float32, dtype], repeats: 10);
        double computeBound = bounds.MatmulGflopsFor(dtype) * 1e9 / (2.0 * parameters);
        // One stream reads every weight once per token: its decode is bounded by memory bandwidth.
        long weightBytes = model.WeightBytes; // for quantized weights, their levels and scales
        double bandwidthBound = bounds.BandwidthGBps * 1e9 / weightBytes;
        double ttftFloor = PrefillFloorSeconds(model.Config, parameters, weightBytes, promptTokens, bounds.MatmulGflopsFor(dtype), bounds.BandwidthGBps);
        var rows = new List<object>();
        // Output tokens/s is the headline (as vLLM's "output token throughput"); prompt + output tokens/s (its "total
        // token throughput") is what the compute bound limits: every prompt token costs a generated token's FLOPs.
        var table = new Table().AddColumns("streams", "output tokens/s", "× 1 stream", "of compute bound", "all tokens/s", "of compute bound",
            "TTFT p50 / p99", "ITL p50 / p99", "decode tok/s per stream", "KV unusable", "step ms: schedule / inputs / forward / sample / output");
        double single = 0;
        LoadResult? oneStream = null;
        foreach (int streams in parse.GetValue(Streams)!)
        {
            if (!json) Console.Error.WriteLine($"{streams} streams…");
            var result = await Load(engine, streams, promptTokens, newTokens);
            if (streams == 1 || single == 0) single = result.TokensPerSecond;
            if (streams == 1) oneStream ??= result;
            double allTokens = result.TokensPerSecond * (promptTokens + newTokens) / newTokens;
            rows.Add(new { streams, tokens_per_second = result.TokensPerSecond, speedup = result.TokensPerSecond / single,
                fraction_of_compute_bound = result.TokensPerSecond / computeBound, all_tokens_per_second = allTokens,
                all_tokens_fraction_of_compute_bound = allTokens / computeBound, ttft_p50 = result.Ttft.P50, ttft_p99 = result.Ttft.P99,
                itl_p50 = result.Itl.P50, itl_p99 = result.Itl.P99, decode_tokens_per_second_per_stream = 1 / result.Itl.P50,
                decode_fraction_of_bandwidth_bound = 1 / result.Itl.P50 / bandwidthBound, kv_unusable = result.Fragmentation,
                step_ms = StepJson(result.Times) });
            var ms = PerStep(result.Times);
            table.AddRow($"{streams}", $"{result.TokensPerSecond:F1}", $"{result.TokensPerSecond / single:F2}", $"{result.TokensPerSecond / computeBound:P0}",
                $"{allTokens:F1}", $"{allTokens / computeBound:P0}", $"{result.Ttft.P50 * 1000:F0} / {result.Ttft.P99 * 1000:F0} ms", $"{result.Itl.P50 * 1000:F0} / {result.Itl.P99 * 1000:F0} ms",
                $"{1 / result.Itl.P50:F1} ({1 / result.Itl.P50 / bandwidthBound:P0} of bound)", $"{result.Fragmentation:P1}",
                $"{ms.schedule:F2} / {ms.inputs:F2} / {ms.forward:F2} / {ms.sample:F2} / {ms.output:F2}");
        }

        if (!json) Console.Error.WriteLine("one stream between bandwidth probes…");
        var probe = new BandwidthProbe(); // made after the resident sets are read: its 384 MB are not the engine's
        var bracketed = BracketedDecode.Measure(probe, weightBytes, parse.GetValue(BracketedRuns), () => 1 / Load(engine, 1, promptTokens, newTokens).GetAwaiter().GetResult().Itl.P50);

        if (!json) Console.Error.WriteLine("constrained decoding…");
        var constrained = new List<object>();
        var constrainedTable = new Table().AddColumns("streams", "free: output tokens/s", "sample ms per step",
            "JSON Schema, new states: output tokens/s", "sample ms per step", "JSON Schema, states cached: output tokens/s", "sample ms per step", "grammar states");
        foreach (int streams in new[] { 1, 32 })
        {
            var free = await Load(engine, streams, promptTokens, newTokens);
            var constraint = new OutputConstraint(OutputConstraintKind.JsonSchema, BenchSchema);
            var automaton = GrammarAutomaton.For(constraint.Compile(), Gpt2Tokenizer.Default); // once per schema (and the vocabulary's trie once per process), cached: not a cost of the steps
            // First run: every state the outputs reach is new to the automaton (its mask is computed then); the second
            // run writes the same outputs (greedy), so it shows the per-step cost once masks are cached.
            int prompts = NextPrompts();
            var cold = await Load(engine, streams, promptTokens, newTokens, constraint, prompts);
            var warm = await Load(engine, streams, promptTokens, newTokens, constraint, prompts);
            int states = automaton.InternedStates;
            double freeSample = PerStep(free.Times).sample, coldSample = PerStep(cold.Times).sample, warmSample = PerStep(warm.Times).sample;
            constrained.Add(new { streams, free_tokens_per_second = free.TokensPerSecond, free_sample_ms = freeSample, free_step_ms = StepJson(free.Times),
                constrained_tokens_per_second = cold.TokensPerSecond, constrained_sample_ms = coldSample, constrained_step_ms = StepJson(cold.Times),
                cached_tokens_per_second = warm.TokensPerSecond, cached_sample_ms = warmSample, cached_step_ms = StepJson(warm.Times),
                grammar_states = states });
            constrainedTable.AddRow($"{streams}", $"{free.TokensPerSecond:F1}", $"{freeSample:F2}", $"{cold.TokensPerSecond:F1}", $"{coldSample:F2}",
                $"{warm.TokensPerSecond:F1}", $"{warmSample:F2}", $"{states}");
        }

        if (!json) Console.Error.WriteLine("follow-up turn of a long conversation…");
        var followUp = await FollowUp(engine, parse.GetValue(ConversationTokens));
        if (json)
        {
            JsonOutput.Write(new { matmul_gflops = bounds.MatmulGflopsFor(dtype), compute_bound_tokens_per_second = computeBound,
                bandwidth_gbps = bounds.BandwidthGBps, bandwidth_bound_tokens_per_second = bandwidthBound,
                kv_bytes_per_token = engine.KvBytesPerToken, kv_dtype = DeviceSpec.DTypeName(engine.KvDType), weight_bytes = weightBytes, quantization = quantization?.Name, resident_loaded_bytes = residentLoaded, resident_bytes = resident,
                rows, one_stream_bracketed = bracketed.Select(r => new { decode_tokens_per_second = r.TokensPerSecond, bandwidth_gbps = r.BandwidthGBps, fraction_of_bound = r.FractionOfBound }),
                constrained, follow_up = followUp, ttft_floor_seconds = ttftFloor, ttft_floor_decode_steps = ttftFloor * bandwidthBound,
                one_stream_ttft_decode_steps = oneStream is null ? (double?)null : oneStream.Ttft.P50 / oneStream.Itl.P50 });
            return 0;
        }
        AnsiConsole.Write(table);
        AnsiConsole.Write(constrainedTable);
        var turns = new Table().AddColumns("follow-up turn", "time to first token", "× faster than recompute");
        foreach (var (name, seconds) in followUp)
            turns.AddRow(name, $"{seconds * 1000:F0} ms", $"{followUp["recomputed"] / seconds:F1}");
        AnsiConsole.Write(turns);
        AnsiConsole.WriteLine($"bandwidth bound for one stream {bandwidthBound:F1} tokens/s ({weightBytes / 1e6:F0} MB of weights ÷ {bounds.BandwidthGBps:F1} GB/s); " +
            $"compute bound {computeBound:F0} tokens/s (matmul {bounds.MatmulGflopsFor(dtype):F0} GFLOP/s ÷ 2 × {parameters / 1e6:F0}M parameters); " +
            $"KV {engine.KvBytesPerToken / 1024.0:F0} KiB per token ({DeviceSpec.DTypeName(engine.KvDType)}); {Environment.ProcessorCount} cores; weights {quantization?.Name ?? "dense"}, " +
            $"resident set with the model loaded {residentLoaded / 1e6:F0} MB, after the engine's warm-up {resident / 1e6:F0} MB (its KV pool included)");
        AnsiConsole.WriteLine($"time to first token for a {promptTokens}-token prompt at best {ttftFloor * 1000:F0} ms here ({ttftFloor * bandwidthBound:F2} decode steps at the bandwidth bound): " +
            "its block products at the matmul rate (or their weights read once, if slower) and the LM head's weights read once" +
            (oneStream is null ? "" : $"; measured at 1 stream {oneStream.Ttft.P50 * 1000:F0} ms, {oneStream.Ttft.P50 / oneStream.Itl.P50:F2} of its decode steps (ITL p50)"));
        if (bracketed.Count > 0) AnsiConsole.WriteLine($"one stream's decode, each run between two bandwidth probes: {BracketedDecode.Describe(bracketed)}");
        return 0;
    }

    /// <summary>
    /// The fastest a prompt's prefill can run on this machine: 2 FLOPs per block parameter per prompt token at the
    /// measured matmul rate, or the blocks' weights read once where that is slower, then the LM head's weights read once
    /// for the one row it projects (its share of the weight bytes: wte's share of the parameters).
    /// </summary>
    private static double PrefillFloorSeconds(Gpt2Config config, long parameters, long weightBytes, int promptTokens, double matmulGflops, double bandwidthGBps)
    {
        long lmHead = (long)config.VocabSize * config.NEmbd;
        long blocks = parameters - lmHead * (config.TieWordEmbeddings ? 1 : 2) - (long)config.NPositions * config.NEmbd; // not wte, lm_head, wpe
        double bytesPerParameter = weightBytes / (double)parameters;
        double blockSeconds = Math.Max(2.0 * blocks * promptTokens / (matmulGflops * 1e9), blocks * bytesPerParameter / (bandwidthGBps * 1e9));
        return blockSeconds + lmHead * bytesPerParameter / (bandwidthGBps * 1e9);
    }

    private sealed record LoadResult(double TokensPerSecond, Percentiles Ttft, Percentiles Itl, double Fragmentation, EngineStepTimes Times);

    private static object StepJson(EngineStepTimes t)
    {
        var (schedule, inputs, forward, sample, output) = PerStep(t);
        return new { steps = t.Steps, schedule, inputs, forward, sample, output };
    }

    /// <summary>Milliseconds per engine step in each of its parts.</summary>
    private static (double schedule, double inputs, double forward, double sample, double output) PerStep(EngineStepTimes t)
    {
        double steps = Math.Max(1, t.Steps);
        return (t.Schedule * 1000 / steps, t.Inputs * 1000 / steps, t.Forward * 1000 / steps, t.Sample * 1000 / steps, t.Output * 1000 / steps);
    }

    /// <summary>
    /// A list of records (strings, bounded integers, enums), long enough (at least 200) that no stream closes it within
    /// the run: each record's states are new to the automaton (another position in the list), so masks keep being
    /// computed, not only looked up.
    /// </summary>
    private const string BenchSchema = "{\"type\":\"array\",\"minItems\":200,\"items\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"name\",\"age\",\"tags\"]," +
        "\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"red\",\"green\",\"blue\"]},\"maxItems\":3}}}}";

    private static int _prompts;

    /// <summary>A new set of prompts: every run prefills its own, so no run's time to first token is a prefix-cache hit on an earlier run's.</summary>
    private static int NextPrompts() => Interlocked.Increment(ref _prompts);

    /// <param name="prompts">which set of prompts (<see cref="NextPrompts"/>; a new one when null): the same set gives the same greedy outputs</param>
    private static async Task<LoadResult> Load(GenerationEngine engine, int streams, int promptTokens, int newTokens, OutputConstraint? constraint = null, int? prompts = null)
    {
        int set = prompts ?? NextPrompts();
        var ttft = new List<double>();
        var itl = new List<double>();
        var fragmentation = new List<double>();
        var timesBefore = engine.Stats.Times ?? EngineStepTimes.Zero;
        var watch = Stopwatch.StartNew();
        long generated = 0;
        var tasks = Enumerable.Range(0, streams).Select(async s =>
        {
            // Distinct per stream and per set (their first tokens differ): no prefix-cache hits.
            long key = (long)set * 4096 + s;
            var prompt = Enumerable.Range(0, promptTokens).Select(i => 1000 + (int)((key * 7919 + (long)i * 104729) % 45000)).ToArray();
            // No eos, so every stream runs its full length (a constraint ends with eos, but its schema does not close in time).
            var request = new EngineRequest($"bench{s}", prompt, new GenerationConfig { MaxNewTokens = newTokens, EosTokenIds = constraint is null ? [] : null, Constraint = constraint });
            double start = watch.Elapsed.TotalSeconds, last = start;
            bool first = true;
            await foreach (var _ in engine.SubmitAsync(request))
            {
                Interlocked.Increment(ref generated);
                double now = watch.Elapsed.TotalSeconds;
                lock (ttft) (first ? ttft : itl).Add(first ? now - start : now - last);
                first = false;
                last = now;
            }
        }).ToList();
        var all = Task.WhenAll(tasks);
        while (!all.IsCompleted)
        {
            var stats = engine.Stats;
            // Slots allocated but holding no token (the unfilled tail of each sequence's last block), sampled over the run.
            if (stats.BlocksUsed > 0) fragmentation.Add(1 - stats.TokensHeld / (double)(stats.BlocksUsed * stats.BlockSize));
            await Task.WhenAny(all, Task.Delay(20));
        }
        await all;
        double elapsed = watch.Elapsed.TotalSeconds;
        await Task.Delay(50); // the stats refresh after the step that sent the last token
        return new LoadResult(generated / elapsed, Percentiles.Of(ttft), Percentiles.Of(itl), fragmentation.Count == 0 ? 0 : fragmentation.Average(),
            (engine.Stats.Times ?? EngineStepTimes.Zero).Since(timesBefore));
    }

    /// <summary>Time to first token of a follow-up turn: KV kept from the first turn, found in the prefix cache, or recomputed.</summary>
    private static async Task<Dictionary<string, double>> FollowUp(GenerationEngine engine, int conversationTokens)
    {
        var history = Enumerable.Range(0, conversationTokens).Select(i => 2000 + i * 31 % 40000).ToList();
        var config = new GenerationConfig { MaxNewTokens = 16, EosTokenIds = [] };
        async Task<(double Ttft, List<int> Ids)> Turn(EngineRequest request)
        {
            var watch = Stopwatch.StartNew();
            double ttft = 0;
            var ids = new List<int>();
            await foreach (var e in engine.SubmitAsync(request))
            {
                if (ids.Count == 0) ttft = watch.Elapsed.TotalSeconds;
                ids.Add(e.TokenId);
            }
            return (ttft, ids);
        }
        var first = await Turn(new EngineRequest("conversation", history, config) { Owner = "first" });
        List<int> followUp = [.. history, .. first.Ids, .. Enumerable.Range(0, 20).Select(i => 300 + i)];
        var kept = await Turn(new EngineRequest("conversation", followUp, config) { Owner = "fork", ForkFrom = "first" });
        engine.Release("fork");

        // Spilled to disk and restored (what a session does when it deactivates and comes back): write, then read
        // the file and import it under a tenant with nothing cached, so the restore alone brings the KV back.
        string spill = Path.Combine(Path.GetTempPath(), $"gpt2o-bench-{Guid.NewGuid():N}.kv");
        var exportWatch = Stopwatch.StartNew();
        using var snapshot = await engine.ExportKeptAsync("first") ?? throw new InvalidOperationException("the first turn was not kept");
        double exportSeconds = exportWatch.Elapsed.TotalSeconds;
        var spillWatch = Stopwatch.StartNew();
        KvSnapshotFile.Write(spill, snapshot, "bench");
        double spillSeconds = spillWatch.Elapsed.TotalSeconds;
        engine.Release("first");
        await Task.Delay(50);
        var restoreWatch = Stopwatch.StartNew();
        using var read = KvSnapshotFile.TryRead(spill, "bench", snapshot.Tokens, out var reason) ?? throw new InvalidOperationException(reason);
        if (!await engine.ImportKeptAsync("restored", "restored tenant", read)) throw new InvalidOperationException("no room to restore");
        double restoreSeconds = restoreWatch.Elapsed.TotalSeconds;
        var restored = await Turn(new EngineRequest("restored tenant", followUp, config) { Owner = "restored" });
        engine.Release("restored");
        File.Delete(spill);

        var cached = await Turn(new EngineRequest("conversation", followUp, config));
        var recomputed = await Turn(new EngineRequest("another tenant", followUp, config)); // another salt: nothing reusable
        return new()
        {
            ["kept KV"] = kept.Ttft, ["prefix-cached"] = cached.Ttft,
            [$"restored from disk ({(read.Data.numel() * read.Data.ElementSize) >> 20} MB; spill: export {exportSeconds * 1000:F0} + write {spillSeconds * 1000:F0} ms; read + import {restoreSeconds * 1000:F0} ms)"] = restoreSeconds + restored.Ttft,
            ["recomputed"] = recomputed.Ttft,
        };
    }
}
