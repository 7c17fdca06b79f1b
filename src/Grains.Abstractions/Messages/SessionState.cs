namespace Gpt2Orleans.Grains;

/// <summary>
/// A session's persisted state, and what a fork copies: the settings, the transcript, and the token history the
/// model has seen (so a later turn, or a re-prefill after failover, feeds exactly the same tokens).
/// </summary>
[GenerateSerializer]
public sealed class SessionState
{
    [Id(0)] public bool Exists { get; set; }
    [Id(1)] public string Model { get; set; } = "";
    [Id(2)] public string? SystemPrompt { get; set; }
    [Id(3)] public GenerationParameters Defaults { get; set; } = new();
    [Id(4)] public ContextPolicy ContextPolicy { get; set; }
    [Id(5)] public List<SessionTurn> Turns { get; set; } = [];
    /// <summary>Every token fed to or produced by the model, in order.</summary>
    [Id(6)] public List<int> Tokens { get; set; } = [];
    /// <summary>Where each user turn's tokens start in <see cref="Tokens"/> (the system prompt's tokens come before the first).</summary>
    [Id(7)] public List<int> TurnStarts { get; set; } = [];
    [Id(8)] public DateTimeOffset CreatedAt { get; set; }
    /// <summary>How this conversation is rendered, fixed when it starts (null in states written before templates: the default).</summary>
    [Id(9)] public ChatTemplate? ChatTemplate { get; set; }
    /// <summary>The stop string the last reply ended on (already in <see cref="Tokens"/>), which the next turn continues from.</summary>
    [Id(10)] public string? OpenedBy { get; set; }
}
