using System.Collections.Concurrent;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>
/// This silo's view of how busy each silo's model replicas are (running and waiting sequences, or requests in
/// flight), as the catalog's list last said (<see cref="Models.ModelReporter"/>). Placement reads it without
/// waiting; the least loaded candidate wins, ties broken at random.
/// </summary>
public sealed class SiloLoadView
{
    private readonly ConcurrentDictionary<SiloAddress, int> _load = new();

    /// <summary>Every silo's load at once: a silo not named carries none.</summary>
    public void ReportAll(IReadOnlyDictionary<SiloAddress, int> loads)
    {
        foreach (var silo in _load.Keys.Except(loads.Keys)) _load.TryRemove(silo, out _);
        foreach (var (silo, load) in loads) _load[silo] = load;
    }

    public int LoadOf(SiloAddress silo) => _load.GetValueOrDefault(silo);

    public SiloAddress LeastLoaded(IReadOnlyList<SiloAddress> candidates) => Routing.LeastLoaded.Of(candidates, LoadOf);
}
