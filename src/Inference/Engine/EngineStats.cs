namespace Gpt2Orleans.Inference.Engine;

/// <summary>A snapshot of the engine's state, refreshed after every step. <see cref="TokensHeld"/>: token slots in use by
/// running and kept sequences (against BlocksUsed × block size, it measures fragmentation). <see cref="LiveTensors"/>:
/// tensors the engine's loop created and has not disposed (the pool's own included); flat when nothing leaks.</summary>
public sealed record EngineStats(int Kept, int Running, int Waiting, int BlocksUsed, int BlocksFree, int BlocksCached, int BlocksTotal,
    long Preemptions, long Rejections, long PromptTokens, long GeneratedTokens, long PrefixQueries, long PrefixHits, long TokensHeld, int BlockSize, long LiveTensors,
    EngineStepTimes? Times = null);
