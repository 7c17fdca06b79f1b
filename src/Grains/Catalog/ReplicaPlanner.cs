namespace Gpt2Orleans.Grains.Catalog;

/// <summary>
/// The catalog's decisions about replicas, from the silos' latest reports and the loads it has already assigned:
/// which silo holds a model now, where a cold model loads (a silo it may load on, with its device, where it fits in
/// free memory, or else where idle models can be evicted for it, the least loaded first), whether demand wants
/// another replica, and which idle replica is surplus. Plain code over plain records, so it is tested on its own.
/// </summary>
public sealed class ReplicaPlanner(IReadOnlyDictionary<string, SiloReport> silos, IReadOnlyList<(string Model, string Silo, int Version, long Bytes)> assigned)
{
    /// <summary>Running plus waiting sequences per replica above which a model gets another replica (up to its maximum).</summary>
    public const int ScaleUpLoad = 8;
    /// <summary>How long a replica above a model's needs must be idle before it is unloaded.</summary>
    public static readonly TimeSpan ScaleDownIdle = TimeSpan.FromSeconds(30);

    private IEnumerable<ReplicaStatus> Current(ModelDefinition d) =>
        silos.Values.SelectMany(s => s.Replicas).Where(r => !r.Static && r.Model == d.Name && r.Version == d.Version);

    private IEnumerable<ReplicaStatus> Ready(ModelDefinition d) => Current(d).Where(r => r.State == ModelStates.Loaded);

    private IEnumerable<string> Assigned(ModelDefinition d) => assigned.Where(a => a.Model == d.Name && a.Version == d.Version).Select(a => a.Silo);

    /// <summary>Silos holding or about to hold the current version (ready, loading or assigned).</summary>
    private HashSet<string> Holders(ModelDefinition d) =>
        Current(d).Where(r => r.State != ModelStates.Failed).Select(r => r.Silo).Concat(Assigned(d)).ToHashSet();

    /// <summary>The least loaded silo with the current version ready, else one loading it; null when none has it.</summary>
    public string? Holding(ModelDefinition d)
    {
        var ready = Ready(d).ToList();
        if (ready.Count > 0) return Routing.LeastLoaded.Of(ready, r => r.Load).Silo;
        return Current(d).FirstOrDefault(r => r.State == ModelStates.Loading)?.Silo ?? Assigned(d).FirstOrDefault();
    }

    /// <summary>A failed load of the current version that is still backing off, when nothing else holds it.</summary>
    public ReplicaStatus? Failure(ModelDefinition d) =>
        Holders(d).Count > 0 ? null : Current(d).Where(r => r.State == ModelStates.Failed && r.RetryAt > DateTimeOffset.UtcNow).MinBy(r => r.RetryAt);

    private long Needed(ModelDefinition d, SiloReport silo) => (d.MemoryBytes ?? Models.ModelMemory.UnknownWeightBytes) + silo.KvBytesPerModel;

    /// <summary>Bytes the silo has free, less what loads assigned to it will take.</summary>
    private long Free(SiloReport silo) =>
        silo.BudgetBytes - silo.UsedBytes - assigned.Where(a => a.Silo == silo.Silo && !silo.Replicas.Any(r => r.Model == a.Model && r.Version == a.Version))
            .Sum(a => a.Bytes + silo.KvBytesPerModel);

    /// <summary>Bytes that evicting would free for <paramref name="d"/>: idle replicas, and the model's own older versions (they go once drained).</summary>
    private static long Evictable(ModelDefinition d, SiloReport silo) =>
        silo.Replicas.Where(r => !r.Static && r.State == ModelStates.Loaded && (r.Idle || (r.Model == d.Name && r.Version != d.Version))).Sum(r => r.Bytes);

    public string? TryChoose(ModelDefinition d) => Candidates(d, out _).FirstOrDefault();

    /// <summary>Where <paramref name="d"/> should load, or a <see cref="ModelUnavailableException"/> saying why nowhere.</summary>
    public string Choose(ModelDefinition d) =>
        Candidates(d, out string why).FirstOrDefault() ?? throw new ModelUnavailableException(d.Name, why, 5);

    private IEnumerable<string> Candidates(ModelDefinition d, out string why)
    {
        var holders = Holders(d);
        var eligible = silos.Values.Where(s => !holders.Contains(s.Silo) && d.MayLoadOn(s.Silo) && (d.Device != "cuda" || s.Gpu)).ToList();
        if (eligible.Count == 0)
        {
            why = silos.Count == 0 ? "no silo has reported yet; retry" : d.Device == "cuda" && !silos.Values.Any(s => s.Gpu) ? "no live silo has a GPU"
                : d.PinnedSilos is not null ? "none of the silos it is pinned to is live" : "every live silo that may load it already has it";
            return [];
        }
        int Load(SiloReport s) => s.Replicas.Sum(r => r.Load);
        var fits = eligible.Where(s => Free(s) >= Needed(d, s)).OrderBy(Load).ThenByDescending(Free).ToList();
        var afterEvicting = eligible.Except(fits).Where(s => Free(s) + Evictable(d, s) >= Needed(d, s)).OrderBy(Load).ThenByDescending(s => Free(s) + Evictable(d, s));
        var chosen = fits.Concat(afterEvicting).Select(s => s.Silo).ToList();
        long largest = eligible.Max(s => Free(s) + Evictable(d, s));
        why = $"no silo has room: it needs {Needed(d, eligible[0]) >> 20} MB, and the most any silo could free is {Math.Max(0, largest) >> 20} MB; retry when models go idle";
        return chosen;
    }

    /// <summary>Whether the model should get one more replica now: below its minimum, or every replica busy and below its maximum.</summary>
    public bool WantsAnother(ModelDefinition d)
    {
        int count = Holders(d).Count;
        if (count < d.MinReplicas) return true;
        if (count == 0 || count >= d.MaxReplicas || Assigned(d).Any()) return false; // a cold model loads on its first request; one new replica at a time
        var ready = Ready(d).ToList();
        return ready.Count == count && (ready.Sum(r => r.Waiting) > 0 || ready.Sum(r => r.Load) >= ScaleUpLoad * ready.Count);
    }

    /// <summary>Whether <paramref name="replica"/> is the one replica of <paramref name="d"/> to unload now: idle long enough, and more than the model needs.</summary>
    public bool Surplus(ModelDefinition d, ReplicaStatus replica)
    {
        var ready = Ready(d).ToList();
        if (ready.Count <= Math.Max(1, d.MinReplicas) || ready.Any(r => r.Waiting > 0)) return false;
        var idle = ready.Where(r => r.Idle && DateTimeOffset.UtcNow - r.LastUsed > ScaleDownIdle).ToList();
        return idle.Count > 0 && idle.MinBy(r => r.LastUsed)!.Silo == replica.Silo && replica.Version == d.Version;
    }
}
