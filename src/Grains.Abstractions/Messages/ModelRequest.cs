namespace Gpt2Orleans.Grains;

/// <summary>
/// A generation on a model worker: the tenant (for fairness and the prefix-cache salt), the prompt's token ids and
/// parameters. A conversation's turn names its <see cref="Owner"/> (the session's key): the engine continues the KV it
/// kept for that owner when it starts the prompt, and keeps this turn's KV under the same key. <see cref="ForkFrom"/>
/// names another owner of the same tenant whose kept KV starts the prompt (a forked session's first turn), shared
/// copy-on-write. No engine-internal id ever leaves the worker.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ModelRequest
{
    [Id(0)] public required string Tenant { get; init; }
    [Id(1)] public required IReadOnlyList<int> PromptIds { get; init; }
    [Id(2)] public GenerationParameters Parameters { get; init; } = new();
    [Id(3)] public string? Owner { get; init; }
    [Id(4)] public string? ForkFrom { get; init; }
    /// <summary>A session's defaults, under <see cref="Parameters"/> and over the model's generation_config.json.</summary>
    [Id(5)] public GenerationParameters? SessionDefaults { get; init; }
}
