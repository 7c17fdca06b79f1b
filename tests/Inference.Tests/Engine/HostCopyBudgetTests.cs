using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>
/// How often a step brings data from the device to the host (each copy is a GPU sync): counted in HostCopy, the one
/// place the engine and the generation code read the device, process-wide, so this runs alone. Sampling costs one copy per step, log-probabilities one more; beam search one per beam group,
/// whatever the number of requests.
/// </summary>
[Collection(RunsAloneCollection.Name)]
public sealed class HostCopyBudgetTests
{
    [Fact]
    public async Task A_step_of_many_requests_makes_at_most_two_copies_and_beams_one_per_group()
    {
        using var model = Gpt2LMHeadModel.FromPretrained(GoldenData.ModelDir("lm"));
        using var engine = new GenerationEngine(model, Gpt2Tokenizer.Default, new EngineOptions { KvBlocks = 512, BlockSize = 4, MaxBatchTokens = 256 });
        var prompt = Gpt2Tokenizer.Default.Encode("Counting the copies");

        async Task<(long Copies, long Steps)> Measure(IEnumerable<GenerationConfig> configs)
        {
            long steps = engine.Stats.Times?.Steps ?? 0, copies = HostCopy.Copies;
            await Task.WhenAll(configs.Select(async config => { await foreach (var _ in engine.SubmitAsync(new EngineRequest("t", prompt, config))) { } }));
            // A request ends inside its last step; the engine's snapshot (with that step counted) is taken after the step.
            await Eventually.True(() => engine.Stats is { Running: 0, Waiting: 0 }, "the snapshot after the last step");
            return (HostCopy.Copies - copies, (engine.Stats.Times?.Steps ?? 0) - steps);
        }

        // Eight sampling and greedy requests, half asking for log-probabilities: at most two copies per step.
        var free = await Measure(Enumerable.Range(0, 8).Select(i => new GenerationConfig
        {
            MaxNewTokens = 12, EosTokenIds = [], DoSample = i % 2 == 0, Seed = i, RepetitionPenalty = i % 3 == 0 ? 1.2 : 1.0, Logprobs = i < 4 ? 2 : null,
        }));
        Assert.True(free.Copies <= 2 * free.Steps, $"{free.Copies} copies in {free.Steps} steps");

        // Four beam searches of one group each (one with log-probabilities): one copy per step, not one per request.
        var beams = await Measure(Enumerable.Range(0, 4).Select(i => new GenerationConfig { NumBeams = 2 + i, MaxNewTokens = 12, EosTokenIds = [], Logprobs = i == 0 ? 1 : null }));
        Assert.True(beams.Copies <= beams.Steps, $"{beams.Copies} copies in {beams.Steps} steps");
        Assert.True(beams.Copies >= 12, "every decoding step of the beams copied their candidates");
    }
}
