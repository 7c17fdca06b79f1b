using System.Collections.Concurrent;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>
/// This silo's view of how busy each silo's engines are (running + waiting sequences), as last reported by the
/// model workers. Placement reads it without waiting; the least loaded candidate wins, ties broken at random.
/// </summary>
public sealed class SiloLoadView
{
    private readonly ConcurrentDictionary<SiloAddress, int> _load = new();

    public void Report(SiloAddress silo, int load) => _load[silo] = load;

    public int LoadOf(SiloAddress silo) => _load.GetValueOrDefault(silo);

    public SiloAddress LeastLoaded(IReadOnlyList<SiloAddress> candidates)
    {
        int least = candidates.Min(LoadOf);
        var best = candidates.Where(s => LoadOf(s) == least).ToList();
        return best[Random.Shared.Next(best.Count)];
    }
}
