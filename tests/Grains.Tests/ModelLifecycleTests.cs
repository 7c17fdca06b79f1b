using Gpt2Orleans.Grains.Tests.Support;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>
/// Models registered at run time load on demand where there is room, are evicted least recently used when a silo
/// needs room, come back when asked for again, swap versions under load without failing a stream, and a model that
/// cannot load fails alone. Each test has a three-silo cluster of its own with small memory budgets.
/// </summary>
public sealed class ModelLifecycleTests : IAsyncLifetime
{
    private LifecycleCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await LifecycleCluster.StartAsync();

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task More_models_than_fit_all_serve_in_turn_with_evictions_and_reloads_and_the_pinned_model_stays()
    {
        // Room for five beside the pinned one (two per silo, one beside it on silo 0): eight do not fit at once.
        var names = Enumerable.Range(0, 8).Select(i => $"m{i}").ToList();
        for (int i = 0; i < names.Count; i++) await _cluster.Register(names[i], seed: 100 + i);

        var first = new Dictionary<string, List<int>>();
        foreach (var name in names) first[name] = await _cluster.Generate(name);
        Assert.True(first.Values.Select(v => string.Join(",", v)).Distinct().Count() > 1, "distinct weights give distinct outputs");
        foreach (var name in names) Assert.Equal(first[name], await _cluster.Generate(name)); // again, reloaded where evicted: the same weights

        var models = await _cluster.WaitFor(m => m.Where(i => names.Contains(i.Definition.Name)).Sum(i => i.Counters.Reloads) > 0, "reloads in the counters");
        var registered = models.Where(m => names.Contains(m.Definition.Name)).ToList();
        Assert.True(registered.Sum(m => m.Counters.Loads) >= 11, $"loads: {registered.Sum(m => m.Counters.Loads)}"); // 8, then at least 3 again
        Assert.True(registered.Sum(m => m.Counters.Evictions) >= 3, $"evictions: {registered.Sum(m => m.Counters.Evictions)}");
        Assert.Contains(LifecycleCluster.Pinned, models.Select(m => m.Definition.Name));
        var pinned = models.Single(m => m.Definition.Name == LifecycleCluster.Pinned);
        Assert.True(pinned.Definition.Static);
        Assert.Equal([_cluster.Cluster.Silos[0].SiloAddress.ToParsableString()], pinned.Silos);
        Assert.Equal(0, pinned.Counters.Evictions);
        Assert.NotEmpty(await _cluster.Generate(LifecycleCluster.Pinned));

        // No silo ever holds more than its budget.
        foreach (var silo in _cluster.Cluster.Silos)
            Assert.True(models.SelectMany(m => m.Replicas).Where(r => r.Silo == silo.SiloAddress.ToParsableString()).Sum(r => r.Bytes) <= LifecycleCluster.BudgetBytes);
    }

    [Fact]
    public async Task Concurrent_requests_for_a_cold_model_cause_one_load()
    {
        await _cluster.Register("cold", seed: 7);
        var replies = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => _cluster.Generate("cold")));
        Assert.All(replies, r => Assert.Equal(replies[0], r));
        var cold = (await _cluster.WaitFor(m => m.Single(i => i.Definition.Name == "cold").State == ModelStates.Loaded, "cold loaded"))
            .Single(m => m.Definition.Name == "cold");
        Assert.Equal(1, cold.Counters.Loads);
        Assert.Single(cold.Silos);
    }

    [Fact]
    public async Task A_model_that_cannot_load_fails_with_its_reason_while_the_others_serve()
    {
        string hostile = _cluster.HostileFolder();
        await _cluster.Catalog.AddModel(new ModelDefinition("hostile", hostile, [], "cpu"));
        await _cluster.Register("healthy", seed: 3);

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => _cluster.Generate("hostile"));
        Assert.Contains("failed to load", error.Message);
        Assert.DoesNotContain(hostile, error.Message); // the reason, not where the server keeps the file
        Assert.True(error.RetryAfterSeconds >= 1);
        Assert.NotEmpty(await _cluster.Generate("healthy"));

        var models = await _cluster.WaitFor(m => m.Single(i => i.Definition.Name == "hostile").State == ModelStates.Failed, "hostile failed");
        var failed = models.Single(m => m.Definition.Name == "hostile");
        Assert.Contains("safetensors", failed.Error);
        // Backing off: asking again at once is refused with the same reason, without loading again.
        var again = await Assert.ThrowsAsync<ModelUnavailableException>(() => _cluster.Generate("hostile"));
        Assert.Contains("failed to load", again.Message);
        Assert.Equal(ModelStates.Loaded, models.Single(m => m.Definition.Name == "healthy").State);

        // Mended on disk: once the back-off has passed, the next request loads it.
        File.Copy(Path.Combine(_cluster.ModelFolder(3), "model.safetensors"), Path.Combine(hostile, "model.safetensors"), overwrite: true);
        await Task.Delay(TimeSpan.FromSeconds(again.RetryAfterSeconds));
        Assert.NotEmpty(await _cluster.Generate("hostile"));
    }

    [Fact]
    public async Task A_hot_swap_under_sixteen_streams_fails_none_and_new_requests_get_the_new_weights()
    {
        await _cluster.Register("swap", seed: 11);
        await _cluster.Register("reference-new", seed: 12); // what the new version's weights give
        var before = await _cluster.Generate("swap");
        var expectedAfter = await _cluster.Generate("reference-new");
        Assert.NotEqual(before, expectedAfter);

        var started = new CountdownEvent(16);
        var streams = Enumerable.Range(0, 16).Select(async i =>
        {
            var info = await _cluster.Router.FindAsync("swap");
            var worker = await _cluster.Router.RouteAsync(info!);
            int count = 0;
            await foreach (var _ in worker.Generate(new ModelRequest
            {
                Tenant = $"t{i}", PromptIds = [464, 3797], Parameters = new GenerationParameters { MaxNewTokens = 100, MinNewTokens = 100, DoSample = false },
            }))
            {
                if (++count == 1) started.Signal();
                await Task.Delay(10); // a slow reader: the stream, and its hold on version 1, outlasts the swap
            }
            return count;
        }).ToList();
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "the streams started");

        var swapped = await _cluster.Catalog.UpdateModel(new ModelDefinition("swap", _cluster.ModelFolder(12), [], "cpu"));
        Assert.Equal(2, swapped.Version);
        Assert.Contains(streams, s => !s.IsCompleted);
        _cluster.Router.Invalidate();
        Assert.Equal(expectedAfter, await _cluster.Generate("swap")); // a new request: the new version
        Assert.All(await Task.WhenAll(streams), count => Assert.Equal(100, count)); // every old stream finished, none failed

        // Once its streams are done the old version goes.
        await _cluster.WaitFor(m => m.Single(i => i.Definition.Name == "swap").Replicas.All(r => r.Version == 2), "version 1 unloaded");
    }

    [Fact]
    public async Task A_model_with_a_minimum_gets_its_replicas_without_a_request_and_an_unload_frees_them()
    {
        await _cluster.Catalog.AddModel(new ModelDefinition("warm", _cluster.ModelFolder(21), [], "cpu") { MinReplicas = 2, MaxReplicas = 2 });
        var models = await _cluster.WaitFor(m => m.Single(i => i.Definition.Name == "warm").Silos.Count == 2, "two replicas");
        Assert.Equal(ModelStates.Loaded, models.Single(m => m.Definition.Name == "warm").State);

        await _cluster.Catalog.UnloadModel("warm");
        await _cluster.WaitFor(m => m.Single(i => i.Definition.Name == "warm").Replicas.Count == 0, "replicas unloaded");
        Assert.NotEmpty(await _cluster.Generate("warm")); // asked for again: it loads
    }

    [Fact]
    public async Task When_a_silo_stops_its_models_load_elsewhere_on_the_next_request()
    {
        var names = Enumerable.Range(0, 4).Select(i => $"s{i}").ToList();
        for (int i = 0; i < names.Count; i++) await _cluster.Register(names[i], seed: 200 + i);
        var expected = new Dictionary<string, List<int>>();
        foreach (var name in names) expected[name] = await _cluster.Generate(name);

        var models = await _cluster.WaitFor(m => names.All(n => m.Single(i => i.Definition.Name == n).Silos.Count == 1), "every model loaded");
        var victim = _cluster.Cluster.Silos.Skip(1)
            .OrderByDescending(s => models.Count(m => m.Silos.Contains(s.SiloAddress.ToParsableString()))).First();
        string gone = victim.SiloAddress.ToParsableString();
        var moved = models.Where(m => m.Silos.Contains(gone)).Select(m => m.Definition.Name).ToList();
        Assert.NotEmpty(moved);
        await _cluster.Cluster.StopSiloAsync(victim);
        await _cluster.WaitFor(m => m.All(i => !i.Silos.Contains(gone)), "the stopped silo left the list");
        _cluster.Router.Invalidate();

        foreach (var name in moved) Assert.Equal(expected[name], await _cluster.Generate(name));
        var after = await _cluster.Catalog.ListModels();
        foreach (var name in moved) Assert.DoesNotContain(gone, after.Single(m => m.Definition.Name == name).Silos);
    }

    [Fact]
    public async Task A_session_continues_with_the_same_replies_after_its_model_is_unloaded_and_on_the_new_weights_after_a_swap()
    {
        await _cluster.Register("chat", seed: 31);
        string tenant = await SessionCalls.NewTenant(_cluster.Client);
        var session = SessionCalls.Get(_cluster.Client, tenant, "s", "chat");
        await session.Create(new SessionSettings { Model = "chat", SystemPrompt = "Be brief." });
        string[] turns = ["Hello", "How are you?", "Tell me more"];
        var first = (await SessionCalls.Reply(session, turns[0])).Select(t => t.TokenId).ToList();

        await _cluster.Catalog.UnloadModel("chat"); // its kept KV is spilled or dropped with it
        await _cluster.WaitFor(m => m.Single(i => i.Definition.Name == "chat").Replicas.Count == 0, "chat unloaded");
        var second = (await SessionCalls.Reply(session, turns[1])).Select(t => t.TokenId).ToList();

        await _cluster.Catalog.UpdateModel(new ModelDefinition("chat", _cluster.ModelFolder(32), [], "cpu"));
        await _cluster.WaitFor(m => m.Single(i => i.Definition.Name == "chat").Definition.Version == 2, "version 2 listed");
        await Task.Delay(ModelReporterInterval * 2); // the session's silo hears of version 2 with its next report
        var third = (await SessionCalls.Reply(session, turns[2])).Select(t => t.TokenId).ToList();

        var expected = SessionCalls.ExpectedReplies([_cluster.ModelFolder(31), _cluster.ModelFolder(31), _cluster.ModelFolder(32)], "Be brief.", turns);
        Assert.Equal(expected[0], first);
        Assert.Equal(expected[1], second); // re-prefilled from the transcript: the same greedy reply
        Assert.Equal(expected[2], third);  // the new weights, over the whole conversation re-prefilled
        Assert.Equal(6, (await session.GetTranscript()).Turns.Count);
    }

    [Fact]
    public async Task A_busy_model_gets_a_second_replica_up_to_its_maximum()
    {
        await _cluster.Register("busy", seed: 41, maxReplicas: 2);
        Assert.NotEmpty(await _cluster.Generate("busy"));
        var started = new CountdownEvent(16);
        var streams = Enumerable.Range(0, 16).Select(async i =>
        {
            var worker = await _cluster.Router.RouteAsync((await _cluster.Router.FindAsync("busy"))!);
            await foreach (var _ in worker.Generate(new ModelRequest
            {
                Tenant = $"t{i}", PromptIds = [464, 3797], Parameters = new GenerationParameters { MaxNewTokens = 100, MinNewTokens = 100, DoSample = false },
            }))
            {
                if (!started.IsSet) started.Signal();
                await Task.Delay(20); // slow readers keep 16 sequences running: twice what one replica should carry
            }
        }).ToList();
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)));
        var models = await _cluster.WaitFor(m => m.Single(i => i.Definition.Name == "busy").Silos.Count == 2, "a second replica");
        await Task.WhenAll(streams);
        Assert.Equal(2, models.Single(m => m.Definition.Name == "busy").Replicas.Count(r => r.State == ModelStates.Loaded));
    }

    [Fact]
    public async Task A_model_registered_with_int8_weights_loads_quantized()
    {
        await _cluster.Register("dense", seed: 51);
        await _cluster.Catalog.AddModel(new ModelDefinition("int8", _cluster.ModelFolder(51), [], "cpu", Quantization: new WeightQuantization("int8", 8, 32)));
        Assert.NotEmpty(await _cluster.Generate("dense"));
        Assert.NotEmpty(await _cluster.Generate("int8"));
        var models = await _cluster.WaitFor(m => m.Where(i => i.Definition.Name is "dense" or "int8").All(i => i.State == ModelStates.Loaded), "both loaded");
        long Bytes(string name) => models.Single(m => m.Definition.Name == name).Replicas.Single().Bytes;
        Assert.True(Bytes("int8") < Bytes("dense"), $"int8 {Bytes("int8")} bytes, dense {Bytes("dense")}");
    }

    private static readonly TimeSpan ModelReporterInterval = Grains.Models.ModelReporter.Interval;
}
