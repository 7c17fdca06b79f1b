using Gpt2Orleans.Grains.Catalog;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>Where the catalog loads a model, when it adds or drops a replica: from silo reports alone.</summary>
public sealed class ReplicaPlannerTests
{
    private const long MB = 1L << 20;
    private static readonly ModelDefinition Model = new("m", "/models/m", ["lm"], "cpu") { Version = 1, MemoryBytes = 10 * MB, MaxReplicas = 2 };

    private static ReplicaStatus Replica(string model, string silo, int running = 0, int waiting = 0, long bytes = 10 * MB, int version = 1,
        string state = ModelStates.Loaded, TimeSpan? idleFor = null) =>
        new(model, version, silo, state, running, waiting, bytes, DateTimeOffset.UtcNow - (idleFor ?? TimeSpan.Zero));

    private static SiloReport Silo(string silo, long budget, bool gpu = false, params ReplicaStatus[] replicas) =>
        new(silo, budget, 1 * MB, gpu, replicas, new Dictionary<string, ModelCounters>());

    private static ReplicaPlanner Planner(params SiloReport[] silos) => new(silos.ToDictionary(s => s.Silo), []);

    [Fact]
    public void A_cold_model_loads_where_it_fits_without_evicting_then_on_the_least_loaded()
    {
        var planner = Planner(
            Silo("a", 20 * MB, false, Replica("x", "a", running: 1)),     // 9 MB free: no
            Silo("b", 40 * MB, false, Replica("y", "b", running: 3)),     // fits, busier
            Silo("c", 40 * MB, false, Replica("z", "c", running: 1)));    // fits, least loaded
        Assert.Equal("c", planner.Choose(Model));
    }

    [Fact]
    public void Where_nothing_fits_idle_models_make_room_but_busy_ones_do_not()
    {
        var idleOnB = Planner(Silo("a", 20 * MB, false, Replica("x", "a", running: 1)), Silo("b", 20 * MB, false, Replica("y", "b")));
        Assert.Equal("b", idleOnB.Choose(Model));

        var allBusy = Planner(Silo("a", 20 * MB, false, Replica("x", "a", running: 1)), Silo("b", 20 * MB, false, Replica("y", "b", waiting: 2)));
        var error = Assert.Throws<ModelUnavailableException>(() => allBusy.Choose(Model));
        Assert.Contains("no silo has room", error.Message);
        Assert.Contains("needs 11 MB", error.Message);
    }

    [Fact]
    public void The_models_own_old_version_counts_as_room_even_while_busy_since_it_goes_once_drained()
    {
        var planner = Planner(Silo("a", 20 * MB, false, Replica("m", "a", running: 5, version: 0)));
        Assert.Equal("a", planner.Choose(Model));
    }

    [Fact]
    public void Pins_and_the_device_limit_the_silos()
    {
        var silos = new[] { Silo("a@1", 100 * MB), Silo("b@2", 100 * MB, gpu: true) };
        Assert.Equal("a@1", Planner(silos).Choose(Model with { PinnedSilos = ["a"] }));
        Assert.Equal("b@2", Planner(silos).Choose(Model with { Device = "cuda" }));
        Assert.Contains("no live silo has a GPU", Assert.Throws<ModelUnavailableException>(() => Planner(silos[0]).Choose(Model with { Device = "cuda" })).Message);
        Assert.Contains("pinned", Assert.Throws<ModelUnavailableException>(() => Planner(silos).Choose(Model with { PinnedSilos = ["z"] })).Message);
    }

    [Fact]
    public void A_loaded_or_loading_replica_is_where_requests_go_and_a_failure_backs_off()
    {
        Assert.Equal("b", Planner(Silo("a", 100 * MB), Silo("b", 100 * MB, false, Replica("m", "b", state: ModelStates.Loading))).Holding(Model));
        Assert.Null(Planner(Silo("a", 100 * MB, false, Replica("m", "a", version: 0))).Holding(Model)); // another version does not count

        var failed = Replica("m", "a", state: ModelStates.Failed) with { Error = "bad header", RetryAt = DateTimeOffset.UtcNow.AddSeconds(30) };
        Assert.Equal("bad header", Planner(Silo("a", 100 * MB, false, failed)).Failure(Model)!.Error);
        Assert.Null(Planner(Silo("a", 100 * MB, false, failed with { RetryAt = DateTimeOffset.UtcNow.AddSeconds(-1) })).Failure(Model));
    }

    [Fact]
    public void Replicas_follow_demand_between_the_minimum_and_the_maximum()
    {
        var idle = Planner(Silo("a", 100 * MB, false, Replica("m", "a")), Silo("b", 100 * MB));
        Assert.False(idle.WantsAnother(Model));
        Assert.True(idle.WantsAnother(Model with { MinReplicas = 2, MaxReplicas = 2 }));
        Assert.False(Planner(Silo("a", 100 * MB)).WantsAnother(Model)); // cold: it loads on its first request

        var queued = Planner(Silo("a", 100 * MB, false, Replica("m", "a", running: 4, waiting: 3)), Silo("b", 100 * MB));
        Assert.True(queued.WantsAnother(Model));
        Assert.Equal("b", queued.TryChoose(Model));
        Assert.False(queued.WantsAnother(Model with { MaxReplicas = 1 }));
        Assert.True(Planner(Silo("a", 100 * MB, false, Replica("m", "a", running: ReplicaPlanner.ScaleUpLoad)), Silo("b", 100 * MB)).WantsAnother(Model));
    }

    [Fact]
    public void Only_the_longest_idle_replica_above_what_is_needed_is_surplus()
    {
        var old = Replica("m", "a", idleFor: ReplicaPlanner.ScaleDownIdle * 3);
        var older = Replica("m", "b", idleFor: ReplicaPlanner.ScaleDownIdle * 4);
        var fresh = Replica("m", "c");
        var planner = Planner(Silo("a", 100 * MB, false, old), Silo("b", 100 * MB, false, older), Silo("c", 100 * MB, false, fresh));
        Assert.True(planner.Surplus(Model, older));
        Assert.False(planner.Surplus(Model, old));
        Assert.False(planner.Surplus(Model, fresh));

        var one = Planner(Silo("b", 100 * MB, false, older));
        Assert.False(one.Surplus(Model, older)); // the last replica stays (room is made by eviction when needed)
        Assert.False(planner.Surplus(Model with { MinReplicas = 3, MaxReplicas = 3 }, older));
    }
}
