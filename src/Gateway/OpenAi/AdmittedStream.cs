namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// A generation whose first event has already arrived. The engine validates and admits a request when it is
/// submitted (the prompt plus <c>max_tokens</c> beyond the context, a full queue, an invalid default), so awaiting the
/// first event brings any refusal here, before the response's first byte: it answers as an ordinary 4xx error object,
/// as OpenAI validates before it streams, instead of a 200 whose stream is cut after its first chunk.
/// </summary>
public sealed class AdmittedStream<T> : IAsyncDisposable
{
    private readonly IAsyncEnumerator<T> _events;
    private readonly bool _any;

    private AdmittedStream(IAsyncEnumerator<T> events, bool any)
    {
        _events = events;
        _any = any;
    }

    /// <summary>Starts <paramref name="source"/> and waits for its first event (or its end, or its failure, which is thrown).</summary>
    public static async Task<AdmittedStream<T>> StartAsync(IAsyncEnumerable<T> source, CancellationToken cancellationToken)
    {
        var events = source.GetAsyncEnumerator(cancellationToken);
        try { return new AdmittedStream<T>(events, await events.MoveNextAsync()); }
        catch
        {
            await events.DisposeAsync();
            throw;
        }
    }

    /// <summary>Every event, the first included; read once.</summary>
    public async IAsyncEnumerable<T> ReadAllAsync()
    {
        if (!_any) yield break;
        yield return _events.Current;
        while (await _events.MoveNextAsync()) yield return _events.Current;
    }

    public ValueTask DisposeAsync() => _events.DisposeAsync();
}
