using System.Diagnostics;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>Waits (bounded) for state another thread changes, such as the engine loop returning blocks.</summary>
public static class Eventually
{
    public static async Task True(Func<bool> condition, string what = "condition", int seconds = 10)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(seconds)) Assert.Fail($"{what} not reached within {seconds} s");
            await Task.Delay(10);
        }
    }
}
