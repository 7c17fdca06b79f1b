namespace Gpt2Orleans.Grains;

/// <summary>
/// A generation on a model worker: the tenant (for fairness and the prefix-cache salt), the prompt's token ids and
/// parameters; optionally a kept sequence of the same tenant to continue or fork, and whether to keep this one's KV.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ModelRequest
{
    [Id(0)] public required string Tenant { get; init; }
    [Id(1)] public required IReadOnlyList<int> PromptIds { get; init; }
    [Id(2)] public GenerationParameters Parameters { get; init; } = new();
    [Id(3)] public long? ContinueSequence { get; init; }
    [Id(4)] public long? ForkSequence { get; init; }
    [Id(5)] public bool KeepSequence { get; init; }
    /// <summary>Who keeps the sequence (a session's key), so the KV of a turn abandoned before its last token can still be released (<see cref="IModelGrain.ReleaseKeptBy"/>).</summary>
    [Id(6)] public string? Owner { get; init; }
}

/// <summary>A kept sequence's KV: the model worker that holds it and the engine's sequence id.</summary>
[GenerateSerializer, Immutable]
public sealed record KvHandle([property: Id(0)] string Worker, [property: Id(1)] long Sequence);
