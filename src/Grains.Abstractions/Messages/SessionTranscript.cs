namespace Gpt2Orleans.Grains;

/// <summary>A conversation as its owner sees it, with the settings its turns use.</summary>
[GenerateSerializer, Immutable]
public sealed record SessionTranscript(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string Model,
    [property: Id(2)] string? SystemPrompt,
    [property: Id(3)] IReadOnlyList<SessionTurn> Turns,
    [property: Id(4)] int TokenCount,
    [property: Id(5)] DateTimeOffset CreatedAt,
    [property: Id(6)] GenerationParameters Defaults,
    [property: Id(7)] ContextPolicy ContextPolicy,
    [property: Id(8)] ChatTemplate ChatTemplate);

/// <summary>One message: "user" or "assistant", and its text.</summary>
[GenerateSerializer, Immutable]
public sealed record SessionTurn([property: Id(0)] string Role, [property: Id(1)] string Text);
