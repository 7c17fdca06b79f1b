namespace Gpt2Orleans.Grains;

/// <summary>What a conversation is created with.</summary>
[GenerateSerializer, Immutable]
public sealed record SessionSettings
{
    [Id(0)] public required string Model { get; init; }
    [Id(1)] public string? SystemPrompt { get; init; }
    [Id(2)] public GenerationParameters Defaults { get; init; } = new();
    [Id(3)] public ContextPolicy ContextPolicy { get; init; } = ContextPolicy.Reject;
}
