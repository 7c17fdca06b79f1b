namespace Gpt2Orleans.Inference.Engine;

/// <summary>The engine's queue is full: a retryable rejection that says how long to wait before trying again.</summary>
public sealed class EngineOverloadedException(TimeSpan retryAfter, string message) : Exception(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}
