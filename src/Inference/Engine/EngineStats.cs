namespace Gpt2Orleans.Inference.Engine;

/// <summary>A snapshot of the engine's state, refreshed after every step.</summary>
public sealed record EngineStats(int Kept, int Running, int Waiting, int BlocksUsed, int BlocksFree, int BlocksCached, int BlocksTotal,
    long Preemptions, long Rejections, long PromptTokens, long GeneratedTokens, long PrefixQueries, long PrefixHits);
