using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// The logits of one step (vLLM's ModelRunnerOutput), float32: first one row per chunk in <see cref="Sampled"/> (the
/// last token of each chunk that reaches its sequence's end), then one per scored prompt position in <see cref="Scored"/>
/// (the row at position p predicts token p + 1). Lives in the step's dispose scope.
/// </summary>
internal sealed record RunnerOutput(Tensor Logits, IReadOnlyList<ScheduledChunk> Sampled, IReadOnlyList<(EngineSequence Sequence, int Position)> Scored)
{
    /// <summary>Seconds spent building the inputs (ids, paged metadata, block copies) and in the forward pass.</summary>
    public double InputSeconds { get; init; }
    public double ForwardSeconds { get; init; }
}

/// <summary>
/// Runs the model for the scheduler's plan (vLLM's model runner): makes the block copies, builds the paged batch
/// (flat token ids, positions, slots), runs the paged forward pass and returns only the rows of logits that are
/// needed. All device and threading policy lives here, per engine: libtorch's intra-op threads are set on the
/// engine's own loop thread before each step (OpenMP keeps the count per calling thread, so two engines in one
/// process do not race on it): one thread for a step that our kernels split across the cores themselves (<see cref="KernelPolicy.OneThreadStep"/>)
/// (libtorch's idle OpenMP workers would spin on the core it needs), all of them otherwise. The engine's
/// <see cref="KernelPolicy"/> (batch invariance, the mat-vec kernel) goes with every forward pass.
/// </summary>
internal sealed class ModelRunner(Gpt2LMHeadModel model, KvBlockPool pool, BlockAllocator allocator, KernelPolicy policy, int? threads = null)
{
    private readonly int _threads = threads ?? Environment.ProcessorCount;
    private int _threadsSet;

    public RunnerOutput Execute(SchedulerOutput plan)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        foreach (var copy in plan.Copies) pool.CopyBlock(copy.Source, copy.Destination);
        var parts = new List<PagedSequence>(plan.Chunks.Count);
        var ids = new long[plan.TokenCount];
        var sampled = new List<ScheduledChunk>();
        var sampleRows = new List<long>();
        var scored = new List<(EngineSequence, int)>();
        var scoreRows = new List<long>();
        int offset = 0;
        foreach (var chunk in plan.Chunks)
        {
            var sequence = chunk.Sequence;
            parts.Add(new PagedSequence(sequence.Id, offset, chunk.Count, chunk.Start));
            for (int i = 0; i < chunk.Count; i++) ids[offset + i] = sequence.Tokens[chunk.Start + i];
            if (sequence.PromptLogprobs is not null)
                for (int p = chunk.Start; p < Math.Min(chunk.Start + chunk.Count, sequence.Tokens.Count - 1); p++)
                {
                    scored.Add((sequence, p));
                    scoreRows.Add(offset + p - chunk.Start);
                }
            offset += chunk.Count;
            if (chunk.ReachesEnd && chunk.Samplers.Count > 0)
            {
                sampled.Add(chunk);
                sampleRows.Add(offset - 1);
            }
        }
        SetThreads(policy.OneThreadStep(model.DType, model.Device, plan.TokenCount) ? 1 : _threads);
        using var batch = new PagedBatch(pool, allocator, parts);
        var tokenIds = torch.tensor(ids, device: model.Device);
        long built = System.Diagnostics.Stopwatch.GetTimestamp();
        var logits = model.forwardPaged(tokenIds, batch, pool, [.. sampleRows, .. scoreRows], policy).to(ScalarType.Float32);
        return new RunnerOutput(logits, sampled, scored)
        {
            InputSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(started, built).TotalSeconds,
            ForwardSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(built).TotalSeconds,
        };
    }

    private void SetThreads(int count)
    {
        if (model.Device.type != DeviceType.CPU) return;
        if (_threadsSet == 0) _threadsSet = torch.get_num_threads(); // what this thread runs with now: change only what differs
        if (count == _threadsSet) return;
        torch.set_num_threads(count);
        _threadsSet = count;
    }
}
