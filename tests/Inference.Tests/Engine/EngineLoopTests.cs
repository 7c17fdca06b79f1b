using Gpt2Orleans.Inference.Engine;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>The thread and bounded intake both engines run on.</summary>
public sealed class EngineLoopTests
{
    [Fact]
    public void Past_the_bound_a_caller_is_refused_at_once_counting_what_waits_inside_too()
    {
        int inside = 1;
        using var loop = new EngineLoop<int>("test", () => TimeSpan.FromMilliseconds(50), maxWaiting: 3, () => inside); // never takes anything in
        loop.Start();
        int admitted = 0;
        loop.Enqueue(1, () => new EngineOverloadedException(TimeSpan.FromSeconds(2), "full"), () => admitted++);
        loop.Enqueue(2, () => new EngineOverloadedException(TimeSpan.FromSeconds(2), "full"), () => admitted++);
        var refused = Assert.Throws<EngineOverloadedException>(() => loop.Enqueue(3, () => new EngineOverloadedException(TimeSpan.FromSeconds(2), "full"), () => admitted++));
        Assert.Equal(TimeSpan.FromSeconds(2), refused.RetryAfter);
        Assert.Equal(2, loop.Queued); // the refused one is not counted
        Assert.Equal(2, admitted);    // nor started (no trace for a refused request)
        inside = 0;
        loop.Enqueue(3, () => new EngineOverloadedException(TimeSpan.FromSeconds(2), "full"));
        Assert.Equal(3, loop.Queued);
    }

    [Fact]
    public void An_arrival_or_a_wake_ends_the_wait_and_the_loop_takes_arrivals_in_order()
    {
        var taken = new List<int>();
        using var woken = new ManualResetEventSlim();
        EngineLoop<int> loop = null!;
        loop = new EngineLoop<int>("test", () =>
        {
            while (loop.TryTake(out int item)) lock (taken) taken.Add(item);
            woken.Set();
            return TimeSpan.FromSeconds(30); // only a wake-up brings the next turn within the test
        }, maxWaiting: 100, () => 0);
        loop.Start();
        Assert.True(woken.Wait(TimeSpan.FromSeconds(5)));
        woken.Reset();
        var seenWhenAdmitted = new List<int>();
        foreach (int i in new[] { 1, 2, 3 })
            loop.Enqueue(i, () => new EngineOverloadedException(TimeSpan.FromSeconds(1), "full"), () => { lock (taken) if (taken.Contains(i)) seenWhenAdmitted.Add(i); });
        Assert.Empty(seenWhenAdmitted); // admitted runs before the loop can take the item
        Assert.True(SpinWait.SpinUntil(() => { lock (taken) return taken.Count == 3; }, TimeSpan.FromSeconds(5)));
        Assert.Equal([1, 2, 3], taken);
        woken.Reset();
        loop.Wake();
        Assert.True(woken.Wait(TimeSpan.FromSeconds(5)), "a wake-up ends a 30 s wait");
        Assert.Equal(0, loop.Queued);
    }

    [Fact]
    public void Once_stopped_nothing_more_is_taken_in()
    {
        var loop = new EngineLoop<int>("test", () => TimeSpan.FromMilliseconds(10), maxWaiting: 10, () => 0);
        loop.Start();
        loop.Stop();
        Assert.True(loop.Stopping);
        Assert.Throws<ObjectDisposedException>(() => loop.Enqueue(1, () => new EngineOverloadedException(TimeSpan.FromSeconds(1), "full")));
        loop.Dispose();
    }
}
