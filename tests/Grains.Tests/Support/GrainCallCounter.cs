using System.Collections.Concurrent;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Tests.Support;

/// <summary>
/// Records the grain calls that silos make on behalf of a request marked with <see cref="Key"/> in its RequestContext
/// (which flows into every call it causes): what a test counts, e.g. the calls one session turn makes.
/// </summary>
public static class GrainCallCounter
{
    public const string Key = "count-grain-calls";
    public static readonly ConcurrentQueue<string> Calls = new();

    /// <summary>
    /// An outgoing-call filter for the test silos. Our own interfaces' calls count by method name; a streamed call
    /// (IAsyncEnumerable) counts once, as "stream", when its enumeration starts (its batches of items are Orleans' plumbing).
    /// </summary>
    public static async Task Filter(IOutgoingGrainCallContext context)
    {
        if (RequestContext.Get(Key) is not null)
        {
            if (context.InterfaceName.StartsWith("Gpt2Orleans.", StringComparison.Ordinal)) Calls.Enqueue(context.MethodName);
            else if (context.MethodName.StartsWith("Start", StringComparison.Ordinal)) Calls.Enqueue("stream");
        }
        await context.Invoke();
    }
}
