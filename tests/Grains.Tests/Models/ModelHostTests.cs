using Gpt2Orleans.Grains.Models;
using Gpt2Orleans.Grains.Tests.Support;
using Gpt2Orleans.Tests.Shared;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gpt2Orleans.Grains.Tests.Models;

/// <summary>One silo's replicas on their own: the budget, least-recently-used eviction, leases that keep a replica, static models that stay, failed loads.</summary>
public sealed class ModelHostTests : IAsyncLifetime
{
    private TinyModelFolders _folders = null!;

    public Task InitializeAsync()
    {
        _folders = new TinyModelFolders(ClusterFixture.AlphaFolder);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _folders.Dispose();
        return Task.CompletedTask;
    }

    private static ModelHost Host(Dictionary<string, string>? staticModels = null) => new(
        Microsoft.Extensions.Options.Options.Create(new ModelHostOptions
        {
            Models = staticModels ?? [], KvCacheBytes = LifecycleCluster.KvBytes, MemoryBudgetBytes = LifecycleCluster.BudgetBytes,
        }),
        ModelStore.CreateDefault(), NullLogger<ModelHost>.Instance);

    private ModelDefinition Model(string name, int seed) => new(name, _folders.Model(seed), ["lm"], "cpu") { Version = 1 };

    private static IEnumerable<string> Held(ModelHost host) => host.Replicas("here").Where(r => r.State == ModelStates.Loaded).Select(r => r.Model).Order();

    [Fact]
    public async Task The_least_recently_used_idle_replica_makes_room_and_a_leased_one_is_kept()
    {
        using var host = Host();
        (await host.LeaseAsync(Model("a", 1))).Dispose();
        using (var b = await host.LeaseAsync(Model("b", 2)))
        {
            (await host.LeaseAsync(Model("a", 1))).Dispose(); // a is now the more recently used, but b is leased
            (await host.LeaseAsync(Model("c", 3))).Dispose();
            Assert.Equal(["b", "c"], Held(host)); // a went: b is in use
        }
        (await host.LeaseAsync(Model("d", 4))).Dispose();
        Assert.Equal(["b", "d"], Held(host)); // c went: b's use ended after c's, so b counts as the more recently used
        Assert.Equal(1, host.Counters()["a"].Evictions);
        (await host.LeaseAsync(Model("a", 1))).Dispose();
        Assert.Equal(new ModelCounters(Loads: 2, Reloads: 1, Evictions: 1), host.Counters()["a"]);
    }

    [Fact]
    public async Task A_static_model_is_never_evicted()
    {
        using var host = Host(new() { ["pinned"] = _folders.Model(9) });
        await host.LoadAllAsync();
        (await host.LeaseAsync(Model("a", 1))).Dispose();
        (await host.LeaseAsync(Model("b", 2))).Dispose();
        (await host.LeaseAsync(Model("c", 3))).Dispose();
        Assert.Contains("pinned", Held(host));
        Assert.Equal(2, Held(host).Count());
    }

    [Fact]
    public async Task A_model_bigger_than_the_budget_fails_at_once_naming_the_sizes()
    {
        using var host = Host();
        var started = DateTime.UtcNow;
        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => host.LeaseAsync(Model("huge", 1) with { MemoryBytes = LifecycleCluster.BudgetBytes * 2 }));
        Assert.Contains("more than this silo's", error.Message);
        Assert.True(DateTime.UtcNow - started < ModelHost.RoomWait / 2, "it did not wait for room that can never come");
        Assert.Empty(host.Replicas("here")); // nothing is held for it: it is not the model's fault
    }

    [Fact]
    public async Task A_failed_load_is_remembered_with_its_reason_and_backs_off()
    {
        using var host = Host();
        var hostile = Model("hostile", 1) with { Source = _folders.Hostile() };
        var first = await Assert.ThrowsAsync<ModelUnavailableException>(() => host.LeaseAsync(hostile));
        Assert.Contains("failed to load", first.Message);
        Assert.DoesNotContain(_folders.Hostile(), first.Message);
        var again = await Assert.ThrowsAsync<ModelUnavailableException>(() => host.LeaseAsync(hostile));
        Assert.True(again.RetryAfterSeconds is >= 1 and <= 2, $"retry after {again.RetryAfterSeconds}");
        var failed = Assert.Single(host.Replicas("here"));
        Assert.Equal(ModelStates.Failed, failed.State);
        Assert.Equal(1, host.Counters()["hostile"].Failures); // backing off: not tried again
        (await host.LeaseAsync(Model("healthy", 2))).Dispose(); // another model is not affected
    }
}
