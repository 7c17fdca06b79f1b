using Gpt2Orleans.Inference.Model;

namespace Gpt2Orleans.Inference.Tests.Model;

public sealed class KernelThreadsTests
{
    [Fact]
    public void Every_part_runs_once_per_section_over_many_sections()
    {
        int parts = KernelThreads.Count;
        var counts = new int[parts];
        for (int section = 0; section < 2000; section++)
            KernelThreads.Run(parts, p => Interlocked.Increment(ref counts[p]));
        Assert.All(counts, c => Assert.Equal(2000, c));
    }

    [Fact]
    public void A_failing_part_is_rethrown_to_the_caller_and_the_team_keeps_working()
    {
        int parts = KernelThreads.Count;
        var error = Assert.Throws<InvalidOperationException>(() =>
            KernelThreads.Run(parts, p => { if (p == parts - 1) throw new InvalidOperationException("part failed"); }));
        Assert.Equal("part failed", error.Message);
        int ran = 0;
        KernelThreads.Run(parts, _ => Interlocked.Increment(ref ran));
        Assert.Equal(parts, ran);
    }

    [Fact]
    public void Callers_on_several_threads_at_once_each_get_all_their_parts()
    {
        int parts = KernelThreads.Count;
        var totals = new long[4];
        var threads = Enumerable.Range(0, totals.Length).Select(t => new Thread(() =>
        {
            for (int section = 0; section < 500; section++)
                KernelThreads.Run(parts, p => Interlocked.Add(ref totals[t], p + 1));
        })).ToArray();
        foreach (var thread in threads) thread.Start();
        Assert.All(threads, thread => Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "a caller did not finish"));
        long perSection = parts * (parts + 1) / 2;
        Assert.All(totals, total => Assert.Equal(500 * perSection, total));
    }

    [Fact]
    public void A_section_after_the_workers_went_to_sleep_still_runs_every_part()
    {
        int parts = KernelThreads.Count;
        KernelThreads.Run(parts, _ => { });
        Thread.Sleep(50); // past the spin time: the workers sleep
        var seen = new int[parts];
        KernelThreads.Run(parts, p => seen[p] = Environment.CurrentManagedThreadId);
        Assert.All(seen, id => Assert.NotEqual(0, id));
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelThreads.Run(parts + 1, _ => { }));
    }
}
