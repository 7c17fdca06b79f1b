using CsCheck;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>The engine gives every request what it would get alone, whatever else is batched, chunked or preempted.</summary>
[Collection(GoldenCollection.Name)]
public sealed class GenerationEngineTests(GoldenData golden)
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;
    private static readonly string[] Prompts =
    [
        "The meaning of life is", "Once upon a time there was a little robot who lived in a quiet town by the sea",
        "A", "Numbers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12", "In the beginning was the Word, and the",
        "Rain falls softly on the quiet roof while", "def add(a, b):\n    return", "The capital of France is",
    ];

    private GenerationEngine NewEngine(EngineOptions? options = null) =>
        new(golden.Lm(), Tokenizer, options ?? new EngineOptions { ModelName = "golden-lm", KvBlocks = 256, BlockSize = 4, MaxBatchTokens = 64 });

    /// <summary>What the dense reference (one request alone, no cache) produces.</summary>
    private IReadOnlyList<IReadOnlyList<int>> Alone(string prompt, GenerationConfig config) =>
        DenseReference.Generate(golden.Lm(), Tokenizer.Encode(prompt), config);

    private static async Task<List<int>[]> Collect(IAsyncEnumerable<TokenEvent> events, int sequences = 1)
    {
        var ids = Enumerable.Range(0, sequences).Select(_ => new List<int>()).ToArray();
        await foreach (var e in events) ids[e.SequenceIndex].Add(e.TokenId);
        return ids;
    }

    private static EngineRequest Request(string prompt, GenerationConfig config, string tenant = "t") =>
        new(tenant, Tokenizer.Encode(prompt), config);

    [Fact]
    public async Task Concurrent_greedy_requests_with_chunked_prefill_equal_each_request_alone()
    {
        using var engine = NewEngine(new EngineOptions { ModelName = "golden-lm", KvBlocks = 256, BlockSize = 4, MaxBatchTokens = 8 });
        var configs = Prompts.Select((_, i) => new GenerationConfig { MaxNewTokens = 6 + i % 4 }).ToArray();
        var results = await Task.WhenAll(Prompts.Select((p, i) => Collect(engine.SubmitAsync(Request(p, configs[i])))));
        for (int i = 0; i < Prompts.Length; i++)
            Assert.Equal(Alone(Prompts[i], configs[i])[0], results[i][0]);
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }

    /// <summary>Random arrival schedules (prompt, length, greedy or seeded sampling, delay), on a pool small enough to preempt.</summary>
    [Fact]
    public void Randomised_arrival_schedules_give_every_request_its_result_alone()
    {
        var arrival = Gen.Select(Gen.Int[0, Prompts.Length - 1], Gen.Int[1, 10], Gen.Bool, Gen.Int[0, 15]);
        arrival.Array[2, 7].Sample(schedule =>
        {
            using var engine = NewEngine(new EngineOptions { ModelName = "golden-lm", KvBlocks = 20, BlockSize = 4, MaxBatchTokens = 12 });
            var runs = new List<(string Prompt, GenerationConfig Config, Task<List<int>[]> Result)>();
            foreach (var (prompt, maxNew, sample, delay) in schedule)
            {
                var config = new GenerationConfig { MaxNewTokens = maxNew, DoSample = sample, Seed = prompt * 31 + maxNew };
                runs.Add((Prompts[prompt], config, Collect(engine.SubmitAsync(Request(Prompts[prompt], config)))));
                Thread.Sleep(delay);
            }
            foreach (var (prompt, config, result) in runs)
                Assert.Equal(Alone(prompt, config)[0], result.GetAwaiter().GetResult()[0]);
            Assert.True(SpinWait.SpinUntil(() => engine.Stats.BlocksUsed == 0, TimeSpan.FromSeconds(10)), "blocks not returned");
        }, iter: 8, threads: 1);
    }

    [Fact]
    public async Task Seeded_sampling_is_the_same_alone_and_in_a_full_batch_and_n_sequences_fork_the_prompt()
    {
        var config = new GenerationConfig { DoSample = true, Seed = 77, MaxNewTokens = 10, NumReturnSequences = 3, TopK = 0 };
        using var engine = NewEngine();
        var alone = await Collect(engine.SubmitAsync(Request(Prompts[0], config)), 3);
        var others = Prompts.Skip(1).Select(p => Collect(engine.SubmitAsync(Request(p, new GenerationConfig { DoSample = true, Seed = 5, MaxNewTokens = 12 }))));
        var batched = Collect(engine.SubmitAsync(Request(Prompts[0], config)), 3);
        await Task.WhenAll(others);
        Assert.Equal(alone.Select(a => a.ToArray()), (await batched).Select(b => b.ToArray()));
        Assert.Equal(Alone(Prompts[0], config).Select(s => s.ToArray()), alone.Select(a => a.ToArray()));
    }

    [Fact]
    public async Task A_small_pool_preempts_and_recomputes_without_changing_any_result()
    {
        using var engine = NewEngine(new EngineOptions { ModelName = "golden-lm", KvBlocks = 8, BlockSize = 4, MaxBatchTokens = 32 });
        var config = new GenerationConfig { MaxNewTokens = 12 };
        var prompts = Prompts.Where(p => Tokenizer.Encode(p).Count + 12 <= 8 * 4).Take(5).ToArray();
        var results = await Task.WhenAll(prompts.Select(p => Collect(engine.SubmitAsync(Request(p, config)))));
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(Alone(prompts[i], config)[0], results[i][0]);
        Assert.True(engine.Stats.Preemptions > 0, "the pool was meant to be too small for all at once");
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task Cancelling_frees_the_sequences_blocks_at_once()
    {
        using var engine = NewEngine();
        using var cancel = new CancellationTokenSource();
        int received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in engine.SubmitAsync(Request(Prompts[1], new GenerationConfig { MaxNewTokens = 60, EosTokenIds = [] }), cancel.Token))
                if (++received == 3) cancel.Cancel();
        });
        await Eventually.True(() => engine.Stats.BlocksUsed == 0 && engine.Stats.Running == 0);
        // Abandoning the stream without a token does the same.
        await foreach (var _ in engine.SubmitAsync(Request(Prompts[0], new GenerationConfig { MaxNewTokens = 60, EosTokenIds = [] }))) break;
        await Eventually.True(() => engine.Stats.BlocksUsed == 0 && engine.Stats.Running == 0);
    }

    [Fact]
    public async Task A_full_queue_rejects_with_a_retryable_error()
    {
        using var engine = NewEngine(new EngineOptions { ModelName = "golden-lm", KvBlocks = 64, BlockSize = 4, MaxWaitingRequests = 2, MaxRunningSequences = 1 });
        var streams = new List<Task<List<int>[]>>();
        var overloaded = await Assert.ThrowsAsync<EngineOverloadedException>(async () =>
        {
            for (int i = 0; i < 50; i++)
            {
                streams.Add(Collect(engine.SubmitAsync(Request(Prompts[i % Prompts.Length], new GenerationConfig { MaxNewTokens = 20 }))));
                await Task.Delay(5); // give the loop time to move arrivals into its waiting queue: that queue counts too
            }
            await Task.WhenAll(streams);
        });
        Assert.True(overloaded.RetryAfter >= TimeSpan.FromSeconds(1));
        await Task.WhenAll(streams); // the accepted ones still finish
        Assert.True(engine.Stats.Rejections >= 1);
    }

    [Fact]
    public async Task One_tenants_flood_does_not_starve_another_tenant()
    {
        using var engine = NewEngine(new EngineOptions { ModelName = "golden-lm", KvBlocks = 256, BlockSize = 4, MaxRunningSequences = 4, MaxBatchTokens = 64 });
        int finishedA = 0;
        var flood = Enumerable.Range(0, 50).Select(async i =>
        {
            // Counted at the stream's last event, as it is read, not once the whole stream's task has completed: an
            // extra hop on a busy 2-core machine let a round that finished before B arrived be counted after it.
            await foreach (var e in engine.SubmitAsync(Request(Prompts[i % Prompts.Length], new GenerationConfig { MaxNewTokens = 30, EosTokenIds = [] }, "A")))
                if (e.Finish is not null) Interlocked.Increment(ref finishedA);
        }).ToList();
        await Task.Delay(10);
        // Counted from B's arrival (its request queued), not from the flood's: how many of A's finish in the meantime
        // does not depend on how fast the engine got through the flood before B came (a faster step finished 7 before B arrived).
        var b = engine.SubmitAsync(Request(Prompts[0], new GenerationConfig { MaxNewTokens = 2 }, "B"));
        int finishedAtArrival = Volatile.Read(ref finishedA), finishedBeforeB = -1;
        Assert.True(finishedAtArrival <= 45, $"the flood was over ({finishedAtArrival} of 50 finished) before B arrived");
        await foreach (var _ in b)
        {
            finishedBeforeB = Volatile.Read(ref finishedA) - finishedAtArrival;
            break;
        }
        // B is admitted at the next free slot: at most one round of A's running sequences finishes first.
        Assert.InRange(finishedBeforeB, 0, 4);
        await Task.WhenAll(flood);
    }

    [Fact]
    public async Task Tenant_weights_set_the_share_of_admissions()
    {
        var options = new EngineOptions
        {
            ModelName = "golden-lm", KvBlocks = 256, BlockSize = 4, MaxRunningSequences = 1,
            TenantWeights = new Dictionary<string, int> { ["A"] = 3, ["B"] = 1 },
        };
        using var engine = NewEngine(options);
        var blocker = Collect(engine.SubmitAsync(Request(Prompts[0], new GenerationConfig { MaxNewTokens = 40, EosTokenIds = [] }, "C")));
        await Eventually.True(() => engine.Stats.Running == 1, "the blocker runs");
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var requests = new List<Task>();
        foreach (var tenant in new[] { "A", "B" })
            for (int i = 0; i < 8; i++)
                // Eight steps each: the completions, recorded on the thread pool, lie steps apart, so they arrive in order.
                requests.Add(Collect(engine.SubmitAsync(Request(Prompts[i], new GenerationConfig { MaxNewTokens = 8, EosTokenIds = [] }, tenant)))
                    .ContinueWith(_ => order.Enqueue(tenant)));
        await blocker;
        await Task.WhenAll(requests);
        // One slot, admissions in turn: three of A's, then one of B's, and so on.
        Assert.Equal(6, order.Take(8).Count(t => t == "A"));
    }

    [Fact]
    public async Task A_tenant_cap_limits_its_running_sequences_while_others_still_run()
    {
        using var engine = NewEngine(new EngineOptions { ModelName = "golden-lm", KvBlocks = 256, BlockSize = 4, MaxSequencesPerTenant = 2 });
        int peakRunning = 0;
        // Sixty steps each: long enough that a poll delayed by a loaded machine still sees them run (15 flaked at 0).
        var flood = Enumerable.Range(0, 6).Select(i => Collect(engine.SubmitAsync(Request(Prompts[i], new GenerationConfig { MaxNewTokens = 60, EosTokenIds = [] }, "A")))).ToList();
        var all = Task.WhenAll(flood);
        while (!all.IsCompleted)
        {
            peakRunning = Math.Max(peakRunning, engine.Stats.Running);
            await Task.Delay(2);
        }
        Assert.InRange(peakRunning, 1, 2);
        var other = await Collect(engine.SubmitAsync(Request(Prompts[0], new GenerationConfig { MaxNewTokens = 3 }, "B")));
        Assert.Equal(3, other[0].Count);
    }

    [Fact]
    public void Bad_requests_are_rejected_before_queueing()
    {
        using var engine = NewEngine();
        Assert.Contains("outside the vocabulary", Assert.ThrowsAny<ArgumentException>(() => engine.SubmitAsync(new EngineRequest("t", [60000], new GenerationConfig()))).Message);
        Assert.Contains("max_new_tokens", Assert.ThrowsAny<ArgumentException>(() => engine.SubmitAsync(Request("Hi", new GenerationConfig { MaxNewTokens = 500 }))).Message);
        Assert.Contains("prompt", Assert.ThrowsAny<ArgumentException>(() => engine.SubmitAsync(new EngineRequest("t", [], new GenerationConfig()))).Message);
        Assert.Contains("tenant", Assert.ThrowsAny<ArgumentException>(() => engine.SubmitAsync(new EngineRequest("", [1], new GenerationConfig()))).Message);
    }
}
