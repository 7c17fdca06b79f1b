namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// Generation streams a caller is still reading (a worker's, a session's turn), counted from each enumerator's
/// creation until its caller disposes it. A draining silo waits for them as well as for the engines' sequences: a
/// sequence's last tokens, and a session's persisting of its turn, still travel through its stream after the engine
/// has finished it, and Orleans keeps a stream's end in the activation for the caller's last read (a silo that
/// deactivated it earlier failed that read with EnumerationAbortedException).
/// </summary>
public sealed class OpenStreams
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    /// <summary><paramref name="stream"/>, counted open from each enumerator's creation until its caller disposes it.</summary>
    public IAsyncEnumerable<T> Track<T>(IAsyncEnumerable<T> stream) => new Counted<T>(stream, this);

    private sealed class Counted<T>(IAsyncEnumerable<T> stream, OpenStreams open) : IAsyncEnumerable<T>
    {
        public IAsyncEnumerator<T> GetAsyncEnumerator(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref open._count);
            try { return new Enumerator<T>(stream.GetAsyncEnumerator(cancellationToken), open); }
            catch { Interlocked.Decrement(ref open._count); throw; }
        }
    }

    private sealed class Enumerator<T>(IAsyncEnumerator<T> inner, OpenStreams open) : IAsyncEnumerator<T>
    {
        private int _disposed;

        public T Current => inner.Current;

        public ValueTask<bool> MoveNextAsync() => inner.MoveNextAsync();

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            try { await inner.DisposeAsync(); }
            finally { Interlocked.Decrement(ref open._count); }
        }
    }
}
