using Gpt2Orleans.Grains.Models;

namespace Gpt2Orleans.Grains.Tests.Models;

/// <summary>A stream counts as open from its enumerator's creation until its caller disposes it, not until it completes.</summary>
public sealed class OpenStreamsTests
{
    private static async IAsyncEnumerable<int> Three()
    {
        for (int i = 0; i < 3; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    private static async IAsyncEnumerable<int> Failing()
    {
        await Task.Yield();
        yield return 0;
        throw new InvalidOperationException("broken stream");
    }

    [Fact]
    public async Task A_stream_is_open_until_its_reader_disposes_it_even_after_its_end()
    {
        var open = new OpenStreams();
        var stream = open.Track(Three());
        Assert.Equal(0, open.Count); // nothing is counted before a reader starts
        var reader = stream.GetAsyncEnumerator();
        var second = stream.GetAsyncEnumerator();
        Assert.Equal(2, open.Count);
        while (await reader.MoveNextAsync()) { }
        Assert.Equal(2, open.Count); // read to its end, but not yet let go of
        await reader.DisposeAsync();
        await reader.DisposeAsync(); // a second dispose counts once
        Assert.Equal(1, open.Count);
        await second.DisposeAsync(); // abandoned before its first item
        Assert.Equal(0, open.Count);
    }

    [Fact]
    public async Task A_failing_stream_still_closes_when_its_reader_lets_go()
    {
        var open = new OpenStreams();
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var _ in open.Track(Failing())) Assert.Equal(1, open.Count);
        });
        Assert.Equal(0, open.Count);
    }
}
