using System.Diagnostics;
using System.Runtime.ExceptionServices;
using TorchSharp;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// Runs a CPU kernel's parts on every core: the caller takes part 0, one long-lived worker thread per other core takes
/// the others. Why our own and not <c>Parallel.For</c>: a decode step makes some sixty short parallel sections (a few
/// hundred µs each, one per product and per layer's attention); the thread pool's workers sleep between them and
/// measured 23–41 µs to join one, during which the caller streams weights alone. These workers spin for a while
/// after each section (<see cref="SpinTime"/>), so the next one starts at once, then sleep, so an idle engine burns no
/// core. They do not spin when the calling thread runs libtorch on several threads: its OpenMP workers need those cores
/// between our sections (measured: a 32-row step's GEMMs slowed while a spinning worker held one of two cores).
/// One team per process: a caller that finds it busy (two engines stepping at once) gets <c>Parallel.For</c>.
/// </summary>
internal static class KernelThreads
{
    /// <summary>How long a worker spins for the next section before it sleeps: longer than the gap between two steps.</summary>
    private static readonly TimeSpan SpinTime = TimeSpan.FromMilliseconds(2);

    /// <summary>How many parts <see cref="Run"/> runs at once: one per core.</summary>
    public static int Count { get; } = Environment.ProcessorCount;

    private static readonly Lazy<Team> Shared = new(() => new Team(Count - 1));

    /// <summary>Runs <paramref name="part"/>(0 … parts−1) in parallel, at most <see cref="Count"/>; returns when all have, rethrowing the first failure.</summary>
    public static void Run(int parts, Action<int> part)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(parts, Count);
        if (parts <= 1) { if (parts == 1) part(0); return; }
        if (!Shared.Value.TryRun(parts, part, spinAfter: torch.get_num_threads() == 1))
            try { Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part); }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                ExceptionDispatchInfo.Throw(e.InnerExceptions[0]); // the same failure either way
            }
    }

    /// <summary>
    /// Runs <paramref name="work"/>(lo, hi) over [0, <paramref name="outputs"/>) in one contiguous share per core, in
    /// multiples of four outputs (a matrix product's kernels take four weight rows at a time); one share under 256.
    /// </summary>
    public static void RunShares(int outputs, Action<int, int> work)
    {
        int shares = outputs < 256 ? 1 : Count;
        Run(shares, s => work(Boundary(s, shares, outputs), Boundary(s + 1, shares, outputs)));
    }

    private static int Boundary(int share, int shares, int outputs) =>
        share == shares ? outputs : (int)((long)share * outputs / shares) / 4 * 4;

    private sealed class Team
    {
        private readonly int _workers;
        private readonly Lock _busy = new();
        private readonly object _wake = new();
        private Action<int>? _part;
        private int _parts;
        private long _section;   // bumped to start a section
        private int _pending;    // workers still in the current section
        private bool _spinAfter; // whether workers spin for the next section after this one
        private int _sleeping;
        private Exception? _error;

        public Team(int workers)
        {
            for (int i = 1; i <= workers; i++)
            {
                int index = i;
                new Thread(() => Work(index)) { IsBackground = true, Name = $"gpt2o-kernel-{index}" }.Start();
            }
            _workers = workers;
        }

        public bool TryRun(int parts, Action<int> part, bool spinAfter)
        {
            if (!_busy.TryEnter()) return false;
            try
            {
                _part = part;
                _parts = parts;
                _error = null;
                _spinAfter = spinAfter;
                Volatile.Write(ref _pending, _workers);
                Interlocked.Increment(ref _section);
                if (Volatile.Read(ref _sleeping) > 0) lock (_wake) Monitor.PulseAll(_wake);
                try { part(0); }
                finally
                {
                    var spin = new SpinWait();
                    while (Volatile.Read(ref _pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
                    _part = null;
                }
                if (_error is { } error) ExceptionDispatchInfo.Throw(error);
                return true;
            }
            finally { _busy.Exit(); }
        }

        private void Work(int index)
        {
            long seen = 0;
            while (true)
            {
                seen = AwaitSection(seen);
                if (index < _parts)
                    try { _part!(index); }
                    catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
                Interlocked.Decrement(ref _pending);
            }
        }

        /// <summary>Spins until a section after <paramref name="seen"/> starts, sleeping once <see cref="SpinTime"/> has passed.</summary>
        private long AwaitSection(long seen)
        {
            long started = Stopwatch.GetTimestamp();
            long section;
            while ((section = Volatile.Read(ref _section)) == seen)
            {
                if (Volatile.Read(ref _spinAfter) && Stopwatch.GetElapsedTime(started) < SpinTime) { Thread.SpinWait(16); continue; }
                lock (_wake)
                {
                    Interlocked.Increment(ref _sleeping); // a full fence: the caller bumps _section, then reads _sleeping
                    while (Volatile.Read(ref _section) == seen) Monitor.Wait(_wake);
                    Interlocked.Decrement(ref _sleeping);
                }
                started = Stopwatch.GetTimestamp();
            }
            return section;
        }
    }
}
