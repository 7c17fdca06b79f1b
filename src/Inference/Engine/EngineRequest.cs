using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// A generation request: the tenant (fair sharing, prefix-cache salt), the prompt as token ids and HF-style
/// generation parameters (sampling or greedy; <c>NumReturnSequences</c> forks the prompt's KV).
/// </summary>
public sealed record EngineRequest(string TenantId, IReadOnlyList<int> PromptIds, GenerationConfig Config);
