namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// Where the engine's loop spends its time, summed over all steps since it started (seconds): scheduling, building
/// the step's inputs (token ids, paged-attention metadata, block copies), the forward pass, sampling (processors,
/// draws, log-probabilities, beam search) and output (detokenizing, stop strings, events, bookkeeping). The next
/// optimisation is chosen from these.
/// </summary>
public sealed record EngineStepTimes(long Steps, double Schedule, double Inputs, double Forward, double Sample, double Output)
{
    public static readonly EngineStepTimes Zero = new(0, 0, 0, 0, 0, 0);

    /// <summary>What happened between an earlier snapshot and this one.</summary>
    public EngineStepTimes Since(EngineStepTimes earlier) =>
        new(Steps - earlier.Steps, Schedule - earlier.Schedule, Inputs - earlier.Inputs, Forward - earlier.Forward, Sample - earlier.Sample, Output - earlier.Output);
}
