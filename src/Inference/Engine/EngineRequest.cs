using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// A generation request: the tenant (fair sharing, prefix-cache salt), the prompt as token ids and HF-style
/// generation parameters (sampling or greedy; <c>NumReturnSequences</c> forks the prompt's KV).
/// For conversations the prompt is the whole history: <see cref="ContinueSequence"/> names a kept sequence whose
/// KV covers the start of it (only the rest is prefilled), <see cref="ForkSequence"/> branches one (it stays
/// kept), and <see cref="KeepSequence"/> keeps this one's KV after it finishes. A kept sequence that is gone
/// (released under memory pressure) is simply recomputed, prefix cache permitting.
/// </summary>
public sealed record EngineRequest(string TenantId, IReadOnlyList<int> PromptIds, GenerationConfig Config)
{
    public long? ContinueSequence { get; init; }
    public long? ForkSequence { get; init; }
    public bool KeepSequence { get; init; }
}
