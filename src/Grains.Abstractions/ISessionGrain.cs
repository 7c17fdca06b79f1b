namespace Gpt2Orleans.Grains;

/// <summary>
/// One conversation, keyed "tenant/session" (<see cref="GrainKeys.Session"/>). Its transcript and token history
/// are persisted after every turn; its KV stays in its model's engine between turns while it is active.
/// Callers set <see cref="GrainKeys.ModelContextKey"/> in the RequestContext so it activates on a silo serving its model.
/// </summary>
public interface ISessionGrain : IGrainWithStringKey
{
    /// <summary>Starts the conversation; fails if it already exists.</summary>
    Task<SessionTranscript> Create(SessionSettings settings);

    /// <summary>Appends a user turn and streams the reply; the reply is persisted when it ends.</summary>
    IAsyncEnumerable<GeneratedToken> Send(string userText, GenerationParameters? parameters = null, CancellationToken cancellationToken = default);

    Task<SessionTranscript> GetTranscript();

    /// <summary>Copies this conversation into a new session of the same tenant (its KV shared copy-on-write where both are on one silo).</summary>
    Task<SessionTranscript> Fork(string newSessionId);

    Task Delete();

    /// <summary>
    /// Used by <see cref="Fork"/>: starts this (new) session as a copy of another one's state; its first turn shares the
    /// KV its model worker keeps for the session <paramref name="forkFrom"/> (copy-on-write) when that still starts it.
    /// </summary>
    Task<SessionTranscript> CreateFrom(SessionState state, string? forkFrom = null);
}
