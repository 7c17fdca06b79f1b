using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>The scheduler alone: plain bookkeeping over a KV-cache manager, no model and no tensors.</summary>
public sealed class SchedulerTests
{
    private const int BlockSize = 4;

    private sealed class Harness(int blocks, int maxBatchTokens = 16, int maxRunning = 64, IReadOnlyDictionary<string, int>? weights = null)
    {
        public KvCacheManager Kv { get; } = new(blocks, BlockSize, "m");
        private long _arrival;

        public Scheduler Create() => new(new EngineOptions { MaxBatchTokens = maxBatchTokens, MaxRunningSequences = maxRunning, TenantWeights = weights ?? new Dictionary<string, int>() }, Kv, contextLength: 128);

        public EngineSequence Submit(Scheduler scheduler, string tenant, int promptLength, GenerationConfig? config = null, bool scoring = false)
        {
            config ??= new GenerationConfig { MaxNewTokens = 8, EosTokenIds = [] };
            var prompt = Enumerable.Range(100 + 1000 * (int)_arrival, promptLength).ToArray(); // no two prompts share a cached prefix
            var request = new EngineRequestState(new EngineRequest(tenant, prompt, config), [], 0, config.MaxNewTokens!.Value, Gpt2Tokenizer.Default)
            {
                Beams = config.IsBeamSearch ? new BeamSearch(config, [], 0, config.MaxNewTokens.Value) : null,
                Score = scoring ? new TaskCompletionSource<IReadOnlyList<TokenLogprob?>>() : null,
            };
            var sequence = new EngineSequence(scheduler.NewSequenceId(), 0, request, request.Request.PromptIds, ++_arrival);
            request.Members.Add(sequence);
            scheduler.Enqueue(sequence);
            return sequence;
        }
    }

    /// <summary>Plans a step and feeds back token 7 for every sequence the plan samples (beams advance by ReplaceBeams instead).</summary>
    private static SchedulerOutput Step(Scheduler scheduler)
    {
        var plan = scheduler.Schedule();
        var sampled = plan.Chunks.Where(c => c.ReachesEnd).SelectMany(c => c.Samplers).Where(s => !s.IsBeam).Select(s => new SampledToken(s, 7, null)).ToList();
        foreach (var finished in scheduler.UpdateFromOutput(plan, sampled).Where(t => t.Finish is not null)) scheduler.Finish(finished.Sequence);
        return plan;
    }

    [Fact]
    public void A_long_prompt_is_prefilled_in_chunks_under_the_token_budget_and_decodes_go_first()
    {
        var h = new Harness(blocks: 64, maxBatchTokens: 8);
        var scheduler = h.Create();
        var longOne = h.Submit(scheduler, "t", promptLength: 20);
        Assert.Equal([8], Step(scheduler).Chunks.Select(c => c.Count));
        var second = h.Submit(scheduler, "t", promptLength: 6);
        var plan = Step(scheduler);
        Assert.Equal([(longOne.Id, 8)], plan.Chunks.Select(c => (c.Sequence.Id, c.Count))); // the budget went to the running prefill
        plan = Step(scheduler); // the long prompt's last 4 tokens, then 4 of the second's
        Assert.Equal([(longOne.Id, 4, true), (second.Id, 4, false)], plan.Chunks.Select(c => (c.Sequence.Id, c.Count, c.ReachesEnd)));
        Assert.Equal([longOne], plan.Chunks[0].Samplers);
        Assert.Empty(plan.Chunks[1].Samplers); // mid-prompt: nothing to sample
        plan = Step(scheduler); // decoding comes first, then the rest of the prefill
        Assert.Equal([(longOne.Id, 1), (second.Id, 2)], plan.Chunks.Select(c => (c.Sequence.Id, c.Count)));
        Assert.True(plan.TokenCount <= 8);
    }

    [Fact]
    public void A_scored_prompt_is_never_sampled_even_when_its_last_chunk_is_one_token()
    {
        var h = new Harness(blocks: 64, maxBatchTokens: 8);
        var scheduler = h.Create();
        var scored = h.Submit(scheduler, "t", promptLength: 9, scoring: true);
        Assert.Empty(Step(scheduler).Chunks.Single().Samplers);
        var last = Step(scheduler).Chunks.Single(); // one pending token: planned like a decode, still not sampled
        Assert.Equal((1, true), (last.Count, last.ReachesEnd));
        Assert.Empty(last.Samplers);
        Assert.Equal(9, scored.Tokens.Count);
    }

    [Fact]
    public void A_full_pool_preempts_the_youngest_sequence_which_recomputes_later()
    {
        var h = new Harness(blocks: 5);
        var scheduler = h.Create();
        var old = h.Submit(scheduler, "t", promptLength: 8);   // 2 blocks
        var young = h.Submit(scheduler, "t", promptLength: 8); // 2 blocks
        Step(scheduler);
        Assert.Equal(2, scheduler.RunningCount);
        // Each decode step appends a token; at 9 tokens each needs a third block, and only one is left.
        var plan = Step(scheduler);
        Assert.Equal([young], plan.Preempted);
        Assert.Equal(1, scheduler.Preemptions);
        Assert.Equal(0, young.Computed);
        Assert.Equal(1, scheduler.WaitingCount);
        Assert.Contains(plan.Chunks, c => c.Sequence == old);
        Assert.Equal(3, h.Kv.Allocator.UsedBlocks);
        while (!old.Finished) Step(scheduler);
        plan = Step(scheduler); // the preempted one comes back first in line and recomputes what the prefix cache lost
        Assert.Equal((young, true), (plan.Chunks[0].Sequence, plan.Chunks[0].ReachesEnd));
        Assert.Equal(10, young.Tokens.Count); // its sampled token survived the preemption, and it sampled the next
    }

    [Fact]
    public void Kept_conversations_give_way_before_any_running_sequence_is_preempted()
    {
        var h = new Harness(blocks: 4);
        var scheduler = h.Create();
        h.Kv.Allocate(999, Enumerable.Range(0, 8).ToArray(), "t", scoring: false);
        h.Kv.Keep("session", "t", 999, Enumerable.Range(0, 8).ToArray(), 8);
        var running = h.Submit(scheduler, "t", promptLength: 8);
        var plan = Step(scheduler);
        Assert.Single(plan.Chunks);
        Assert.Empty(plan.Preempted);
        for (int i = 0; i < 2; i++) plan = Step(scheduler);
        Assert.Empty(plan.Preempted);
        Assert.Equal(0, h.Kv.KeptCount); // evicted for the running sequence's third block
        Assert.Equal(["session"], h.Kv.TakeEvicted());
        Assert.False(running.Finished);
    }

    [Fact]
    public void Tenants_are_admitted_round_robin_with_their_weights()
    {
        var h = new Harness(blocks: 64, maxBatchTokens: 4, weights: new Dictionary<string, int> { ["heavy"] = 2 });
        var scheduler = h.Create();
        var a = Enumerable.Range(0, 4).Select(_ => h.Submit(scheduler, "a", promptLength: 1)).ToList();
        var b = Enumerable.Range(0, 2).Select(_ => h.Submit(scheduler, "b", promptLength: 1)).ToList();
        var heavy = Enumerable.Range(0, 4).Select(_ => h.Submit(scheduler, "heavy", promptLength: 1)).ToList();
        var admitted = Step(scheduler).Chunks.Select(c => c.Sequence.Request.Tenant).ToList();
        Assert.Equal(["a", "b", "heavy", "heavy"], admitted);
        Assert.Equal(6, scheduler.WaitingCount);
    }

    [Fact]
    public void A_per_tenant_cap_holds_a_tenants_extra_requests_back_but_not_others()
    {
        var h = new Harness(blocks: 64);
        var options = new EngineOptions { MaxSequencesPerTenant = 1 };
        var scheduler = new Scheduler(options, h.Kv, 128);
        h.Submit(scheduler, "a", 2);
        h.Submit(scheduler, "a", 2);
        h.Submit(scheduler, "b", 2);
        Assert.Equal(["a", "b"], Step(scheduler).Chunks.Select(c => c.Sequence.Request.Tenant));
    }

    [Fact]
    public void A_prompt_becomes_n_sequences_sharing_its_kv_at_its_end()
    {
        var h = new Harness(blocks: 64);
        var scheduler = h.Create();
        var parent = h.Submit(scheduler, "t", 6, new GenerationConfig { MaxNewTokens = 4, DoSample = true, NumReturnSequences = 3, EosTokenIds = [] });
        var plan = Step(scheduler);
        Assert.Equal(3, plan.Chunks[0].Samplers.Count);
        Assert.Equal(3, scheduler.RunningCount);
        Assert.All(plan.Chunks[0].Samplers, s => Assert.Equal(7, s.Tokens[^1]));
        Assert.Equal(h.Kv.Allocator.BlockTable(parent.Id)[0], h.Kv.Allocator.BlockTable(plan.Chunks[0].Samplers[2].Id)[0]); // shared
        plan = Step(scheduler);
        Assert.Equal(3, plan.Chunks.Count);
        Assert.NotEmpty(plan.Copies); // the shared, part-filled last block is copied before each writes its own token
    }

    [Fact]
    public void A_beam_searchs_beams_are_scheduled_together_or_not_at_all()
    {
        var h = new Harness(blocks: 64, maxBatchTokens: 4);
        var scheduler = h.Create();
        var beam = h.Submit(scheduler, "t", 4, new GenerationConfig { MaxNewTokens = 4, NumBeams = 3, EosTokenIds = [] });
        var plan = Step(scheduler);
        var beams = plan.Chunks[0].Samplers;
        Assert.Equal(3, beams.Count);
        scheduler.ReplaceBeams(beam.Request, [new BeamSearch.NextBeam(0, 11), new BeamSearch.NextBeam(0, 12), new BeamSearch.NextBeam(2, 13)]);
        Assert.True(beams[1].Finished); // no next beam continues beam 1: it leaves
        var other = h.Submit(scheduler, "t", 2);
        plan = Step(scheduler);
        Assert.Equal(3, plan.Chunks.Count(c => c.Sequence.IsBeam));
        Assert.Equal([11, 12, 13], plan.Chunks.Where(c => c.Sequence.IsBeam).Select(c => c.Sequence.Tokens[^1]).Order());
        Assert.Single(plan.Chunks, c => c.Sequence == other); // the fourth token of the budget
        // With a budget smaller than the gang, the beams wait rather than run one by one.
        var narrow = new Harness(blocks: 64, maxBatchTokens: 2);
        var small = narrow.Create();
        var gang = narrow.Submit(small, "t", 2, new GenerationConfig { MaxNewTokens = 4, NumBeams = 3, EosTokenIds = [] });
        Step(small);
        small.ReplaceBeams(gang.Request, [new BeamSearch.NextBeam(0, 1), new BeamSearch.NextBeam(1, 2), new BeamSearch.NextBeam(2, 3)]);
        Assert.Empty(small.Schedule().Chunks);
    }
}
