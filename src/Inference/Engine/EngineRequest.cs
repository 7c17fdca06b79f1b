using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// A generation request: the tenant (fair sharing, prefix-cache salt), the prompt as token ids and HF-style
/// generation parameters (sampling or greedy; <c>NumReturnSequences</c> forks the prompt's KV).
/// For conversations the prompt is the whole history and <see cref="Owner"/> names the conversation (a session's
/// key): the KV its last turn kept is continued when it starts the prompt (only the rest is prefilled), and this
/// turn's KV is kept under the same key when it finishes. <see cref="ForkFrom"/> names another owner whose kept KV
/// starts the prompt, shared copy-on-write (it stays kept). KV that is gone (evicted under memory pressure) is
/// simply recomputed, prefix cache permitting.
/// </summary>
public sealed record EngineRequest(string TenantId, IReadOnlyList<int> PromptIds, GenerationConfig Config)
{
    public string? Owner { get; init; }
    public string? ForkFrom { get; init; }
}
