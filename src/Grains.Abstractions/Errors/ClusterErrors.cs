namespace Gpt2Orleans.Grains;

/// <summary>
/// Errors that cross grain calls and that the gateway maps to HTTP statuses. Each says what went wrong in words a
/// client can act on; <see cref="Parameter"/> names the offending field where there is one.
/// </summary>
[GenerateSerializer]
public abstract class Gpt2OrleansException : Exception
{
    protected Gpt2OrleansException(string message, string? parameter = null) : base(message) => Parameter = parameter;

    [Id(0)] public string? Parameter { get; init; }
}

/// <summary>A request a client must change: bad parameters, a conversation too long for the model, a forbidden model.</summary>
[GenerateSerializer]
public sealed class InvalidRequestException(string message, string? parameter = null) : Gpt2OrleansException(message, parameter);

/// <summary>No such session for this tenant (another tenant's session is reported the same way).</summary>
[GenerateSerializer]
public sealed class SessionNotFoundException(string sessionId) : Gpt2OrleansException($"session '{sessionId}' does not exist", "session")
{
    [Id(0)] public string SessionId { get; init; } = sessionId;
}

/// <summary>
/// The model cannot serve now (no live silo has it or room for it, it is loading past the deadline, its load failed):
/// <see cref="RetryAfterSeconds"/> says when trying again makes sense.
/// </summary>
[GenerateSerializer]
public sealed class ModelUnavailableException(string model, string reason, double retryAfterSeconds = 5)
    : Gpt2OrleansException($"model '{model}' is not available: {reason}", "model")
{
    [Id(0)] public string Model { get; init; } = model;
    [Id(1)] public double RetryAfterSeconds { get; init; } = retryAfterSeconds;
}

/// <summary>The resource is busy with another request that must end first (a session answering a turn).</summary>
[GenerateSerializer]
public sealed class ConflictException(string message, string? parameter = null) : Gpt2OrleansException(message, parameter);

/// <summary>A limit that waiting does not lift (a tenant's most sessions): the client must free something first.</summary>
[GenerateSerializer]
public sealed class QuotaExceededException(string message, string? parameter = null) : Gpt2OrleansException(message, parameter);

/// <summary>A quota or a full engine queue: retry after <see cref="RetryAfterSeconds"/>.</summary>
[GenerateSerializer]
public sealed class RetryLaterException(string message, double retryAfterSeconds) : Gpt2OrleansException(message)
{
    [Id(0)] public double RetryAfterSeconds { get; init; } = retryAfterSeconds;
}
