using System.Collections.Concurrent;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// What every engine runs on: its own thread, which calls the engine's step until stopped, and the intake requests
/// arrive through from any thread. The intake is bounded: when more than the bound are waiting (arrived and not yet
/// taken, plus what the engine reports still queued inside it) a caller gets the engine's
/// <see cref="EngineOverloadedException"/> at once, before anything is queued. A step returns how long to wait for a
/// wake-up before the next one (null: go on at once); an arrival or <see cref="Wake"/> ends the wait.
/// </summary>
internal sealed class EngineLoop<T> : IDisposable
{
    private readonly ConcurrentQueue<T> _arrivals = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private readonly Func<TimeSpan?> _step;
    private readonly int _maxWaiting;
    private readonly Func<int> _waitingInside;
    private int _queued;
    private volatile bool _stopping;

    /// <param name="waitingInside">requests taken in but still waiting in the engine (read across threads: a bound, not an exact count)</param>
    public EngineLoop(string name, Func<TimeSpan?> step, int maxWaiting, Func<int> waitingInside)
    {
        _step = step;
        _maxWaiting = maxWaiting;
        _waitingInside = waitingInside;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    public bool Stopping => _stopping;

    /// <summary>Arrived and not yet taken by the loop.</summary>
    public int Queued => Math.Max(0, Volatile.Read(ref _queued));

    public bool HasArrivals => !_arrivals.IsEmpty;

    /// <summary>Starts the thread (once the engine that owns it is fully built).</summary>
    public void Start() => _thread.Start();

    /// <summary>
    /// Queues <paramref name="item"/> for the loop, or throws what <paramref name="overloaded"/> makes when too many are
    /// waiting. <paramref name="admitted"/> runs once it is admitted, before the loop can see it (a trace's start).
    /// </summary>
    public void Enqueue(T item, Func<EngineOverloadedException> overloaded, Action? admitted = null)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (Interlocked.Increment(ref _queued) + _waitingInside() > _maxWaiting)
        {
            Interlocked.Decrement(ref _queued);
            throw overloaded();
        }
        admitted?.Invoke();
        _arrivals.Enqueue(item);
        _wake.Release();
    }

    /// <summary>The next arrival, on the loop's thread (or after it stopped).</summary>
    public bool TryTake(out T item)
    {
        if (!_arrivals.TryDequeue(out item!)) return false;
        Interlocked.Decrement(ref _queued);
        return true;
    }

    /// <summary>Ends the loop's wait: there is work other than arrivals (a cancellation, work posted to the loop).</summary>
    public void Wake() => _wake.Release();

    private void Run()
    {
        while (!_stopping)
            if (_step() is { } wait) _wake.Wait(wait);
    }

    /// <summary>Stops the thread (waiting up to 30 s for its step to end); what is still queued is the engine's to fail.</summary>
    public void Stop()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Release();
        if (_thread.IsAlive) _thread.Join(TimeSpan.FromSeconds(30));
    }

    public void Dispose()
    {
        Stop();
        _wake.Dispose();
    }
}
