namespace Gpt2Orleans.Grains.Tenants;

/// <summary>
/// Tokens used in the last minute (a sliding window of per-second buckets), for the tokens-per-minute quota.
/// A stream is admitted while the window is under the limit; its tokens are counted when it ends.
/// </summary>
public sealed class TokenRateWindow(TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Queue<(DateTimeOffset At, long Tokens)> _entries = new();
    private long _total;

    public long Used
    {
        get { Expire(); return _total; }
    }

    public void Add(long tokens)
    {
        Expire();
        _entries.Enqueue((_clock.GetUtcNow(), tokens));
        _total += tokens;
    }

    /// <summary>How long until the window drops below <paramref name="limit"/> (zero when it already is).</summary>
    public TimeSpan WaitFor(long limit)
    {
        Expire();
        long total = _total;
        foreach (var (at, tokens) in _entries)
        {
            if (total < limit) break;
            total -= tokens;
            if (total < limit) return at + TimeSpan.FromMinutes(1) - _clock.GetUtcNow();
        }
        return total < limit ? TimeSpan.Zero : TimeSpan.FromMinutes(1);
    }

    private void Expire()
    {
        var cutoff = _clock.GetUtcNow() - TimeSpan.FromMinutes(1);
        while (_entries.TryPeek(out var oldest) && oldest.At <= cutoff) _total -= _entries.Dequeue().Tokens;
    }
}
