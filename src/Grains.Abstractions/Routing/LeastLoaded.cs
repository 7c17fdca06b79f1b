namespace Gpt2Orleans.Grains.Routing;

/// <summary>The choice every router and placement makes: the least loaded candidate, ties broken at random so equal ones share the work.</summary>
public static class LeastLoaded
{
    public static T Of<T>(IReadOnlyCollection<T> candidates, Func<T, int> load)
    {
        int least = candidates.Min(load);
        var best = candidates.Where(c => load(c) == least).ToList();
        return best[Random.Shared.Next(best.Count)];
    }
}
