using Gpt2Orleans.Grains.Tenants;
using Microsoft.Extensions.Time.Testing;

namespace Gpt2Orleans.Grains.Tests;

public sealed class TokenRateWindowTests
{
    [Fact]
    public void Tokens_count_for_one_minute_and_the_wait_says_when_the_window_frees()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var window = new TokenRateWindow(clock);
        window.Add(60);
        clock.Advance(TimeSpan.FromSeconds(20));
        window.Add(50);
        Assert.Equal(110, window.Used);
        Assert.Equal(TimeSpan.Zero, window.WaitFor(200));
        Assert.Equal(TimeSpan.FromSeconds(40), window.WaitFor(100)); // the first 60 leave at t = 60 s
        Assert.Equal(TimeSpan.FromSeconds(60), window.WaitFor(40));  // then 50 remain until t = 80 s
        clock.Advance(TimeSpan.FromSeconds(40));
        Assert.Equal(50, window.Used);
        clock.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(0, window.Used);
    }
}
