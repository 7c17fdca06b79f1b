namespace Gpt2Orleans.Grains;

/// <summary>What a session does when its history and the next reply would exceed the model's context.</summary>
public enum ContextPolicy
{
    /// <summary>Refuse the turn with an error naming the sizes.</summary>
    Reject,
    /// <summary>Drop the oldest turns (never the system prompt) until the new turn fits.</summary>
    DropOldestTurns,
}
