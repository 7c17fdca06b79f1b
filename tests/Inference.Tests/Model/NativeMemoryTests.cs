using System.Diagnostics;
using Gpt2Orleans.Inference.Classification;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using Xunit.Abstractions;

namespace Gpt2Orleans.Inference.Tests.Model;

/// <summary>Hundreds of forward passes and generations leave no live tensor behind and do not grow the process.</summary>
[Collection(RunsAloneCollection.Name)]
public sealed class NativeMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void Repeated_forwards_and_generations_do_not_leak_tensors_or_memory()
    {
        using var lm = Gpt2LMHeadModel.FromPretrained(GoldenData.ModelDir("lm"));
        using var classifier = Gpt2ForSequenceClassification.FromPretrained(GoldenData.ModelDir("seq_cls"));
        var tokenizer = Gpt2Tokenizer.Default;
        var texts = new TextClassifier(tokenizer);

        void Round(int i)
        {
            using (var scope = torch.NewDisposeScope())
            {
                var ids = torch.tensor(new long[] { 464, 3616, 286, 1204, 318 + i % 7 }, [1, 5]);
                using var forward = lm.forward(ids, labels: ids, outputHiddenStates: true, outputAttentions: i % 2 == 0);
            }
            DenseReference.Score(lm, tokenizer.Encode("Hello world, how are you?"));
            texts.ClassifySequences(classifier, ["good", "bad movie"]);
            // Generation runs on the engine's loop thread: the next test counts that thread's tensors.
        }

        for (int i = 0; i < 10; i++) Round(i); // warm-up: caches, JIT, allocator pools
        GC.Collect();
        GC.WaitForPendingFinalizers();
        // Counted per thread: a tensor left to the garbage collector is finalized on another thread, so it stays
        // "live" here even if a collection happens during the loop.
        long liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        long rssBefore = Process.GetCurrentProcess().WorkingSet64;

        for (int i = 0; i < 300; i++) Round(i);
        long liveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        GC.Collect();
        GC.WaitForPendingFinalizers();
        long rssAfter = Process.GetCurrentProcess().WorkingSet64;
        output.WriteLine($"tensors created and not disposed on this thread: {liveBefore} → {liveAfter}; RSS {rssBefore >> 20} → {rssAfter >> 20} MiB");
        Assert.True(liveAfter <= liveBefore, $"{liveAfter - liveBefore} tensors leaked over 300 rounds");
        Assert.True(rssAfter - rssBefore < 64L << 20, $"RSS grew by {(rssAfter - rssBefore) >> 20} MiB");
    }

    /// <summary>
    /// A handle left to the finalizer keeps its storage: quantizing at load once left a view of every dense weight
    /// behind, so GPT-2 small quantized to int4 stayed 638 MB resident (257 MB once the GC happened to run).
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("int8")]
    [InlineData("int4")]
    [InlineData("nf4")]
    public void Loading_leaves_no_tensor_alive_but_the_models_own(string? quantize)
    {
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using var lm = Gpt2LMHeadModel.FromPretrained(GoldenData.ModelDir("lm"),
            new Inference.Checkpoints.ModelLoadOptions { Quantization = Inference.Quantization.QuantizationConfig.Parse(quantize) });
        long created = DisposeScopeManager.Statistics.ThreadTotalLiveCount - before;
        int own = lm.named_parameters().Count() + lm.named_buffers().Count();
        Assert.True(own > 0);
        Assert.Equal(own, created);
    }

    [Fact]
    public async Task Hundreds_of_engine_requests_of_every_kind_leave_no_tensor_and_no_block_behind()
    {
        using var lm = Gpt2LMHeadModel.FromPretrained(GoldenData.ModelDir("lm"));
        using var engine = new Inference.Engine.GenerationEngine(lm, Gpt2Tokenizer.Default,
            new Inference.Engine.EngineOptions { KvBlocks = 24, BlockSize = 4, MaxBatchTokens = 24 });
        var prompt = Gpt2Tokenizer.Default.Encode("The meaning of life is");
        async Task Round(int i)
        {
            using var cancel = new CancellationTokenSource();
            var config = (i % 4) switch
            {
                0 => new GenerationConfig { MaxNewTokens = 6, Logprobs = 2 },
                1 => new GenerationConfig { MaxNewTokens = 6, DoSample = true, Seed = i, NumReturnSequences = 2 },
                2 => new GenerationConfig { MaxNewTokens = 4, NumBeams = 3, NumReturnSequences = 2 },
                _ => new GenerationConfig { MaxNewTokens = 40, EosTokenIds = [] },
            };
            try
            {
                int n = 0;
                await foreach (var _ in engine.SubmitAsync(new Inference.Engine.EngineRequest($"t{i % 3}", prompt, config), cancel.Token))
                    if (i % 4 == 3 && ++n == 3) cancel.Cancel(); // cancelled mid-stream
            }
            catch (OperationCanceledException) { }
            if (i % 5 == 0) await engine.ScoreAsync("t", prompt);
        }
        for (int i = 0; i < 8; i++) await Round(i); // warm-up
        await Eventually.True(() => engine.Stats.Running == 0 && engine.Stats.BlocksUsed == 0);
        long before = engine.Stats.LiveTensors;
        // Concurrent waves so requests batch, queue and preempt each other in the small pool.
        for (int wave = 0; wave < 25; wave++) await Task.WhenAll(Enumerable.Range(wave * 8, 8).Select(Round));
        await Eventually.True(() => engine.Stats.Running == 0 && engine.Stats.BlocksUsed == 0, "all blocks back in the pool");
        output.WriteLine($"engine loop live tensors {before} → {engine.Stats.LiveTensors}; preemptions {engine.Stats.Preemptions}");
        Assert.Equal(before, engine.Stats.LiveTensors);
    }
}
