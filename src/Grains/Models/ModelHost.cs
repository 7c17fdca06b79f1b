using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// The model replicas this silo holds, each a model version loaded once with its own engines, within the silo's
/// memory budget for weights and KV. A caller leases a replica for the length of its call (loading it on first use);
/// when a load needs room, idle replicas are evicted least recently used first (their kept conversations spilled to
/// disk first), never one with a lease or running sequences, and never a model the silo was started with (static).
/// A failed load is remembered with its reason and retried after a back-off that doubles. The engines outlive grain
/// activations, so a session's kept KV survives a model grain's deactivation.
/// </summary>
public sealed class ModelHost : IDisposable
{
    /// <summary>How long a load may wait for busy replicas to become evictable before it fails for lack of room.</summary>
    public static readonly TimeSpan RoomWait = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan RoomPoll = TimeSpan.FromMilliseconds(100);
    /// <summary>How long a request waits for its model to load (under Orleans' 30 s response timeout) before it is told to retry.</summary>
    public static readonly TimeSpan LoadWait = TimeSpan.FromSeconds(25);
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(2), LastRetry = TimeSpan.FromMinutes(5);

    private readonly ModelHostOptions _options;
    private readonly ModelStore _store;
    private readonly ILogger<ModelHost> _logger;
    private readonly object _gate = new();
    private readonly Dictionary<ModelVersion, ModelReplica> _replicas = [];
    private readonly Dictionary<string, ModelCounters> _counters = [];
    private readonly HashSet<ModelVersion> _evicted = []; // loaded here before: loading one again counts as a reload
    private volatile bool _disposed;
    private volatile bool _draining;

    public ModelHost(IOptions<ModelHostOptions> options, ModelStore store, ILogger<ModelHost> logger)
    {
        _options = options.Value;
        _options.Validate();
        _store = store;
        _logger = logger;
        if (_options.SpillDirectory is { } spill) Spills = new KvSpillStore(spill);
        BudgetBytes = _options.MemoryBudgetBytes ?? ModelMemory.DefaultBudgetBytes();
        StaticModels = _options.Models.ToDictionary(m => m.Key, m => _options.StaticDefinition(m.Key));
    }

    /// <summary>This silo's spilled conversations, or null when spilling is off.</summary>
    public KvSpillStore? Spills { get; }

    /// <summary>Bytes this silo may hold in model weights and KV pools.</summary>
    public long BudgetBytes { get; }

    /// <summary>The KV pool each language model gets here.</summary>
    public long KvBytesPerModel => _options.KvCacheBytes;

    public bool Gpu => _options.Device.StartsWith("cuda", StringComparison.Ordinal);

    /// <summary>The models this silo was started with (<c>--model</c>): version 0, loaded at start, never evicted.</summary>
    public IReadOnlyDictionary<string, ModelDefinition> StaticModels { get; }

    public TimeSpan DrainTimeout => TimeSpan.FromSeconds(_options.DrainSeconds);

    /// <summary>Whether new generations are refused because the silo is shutting down.</summary>
    public bool Draining => _draining;

    /// <summary>Raised (outside the host's lock) when a replica is loaded, fails or goes, so the silo reports it without waiting for its next tick.</summary>
    public event Action? Changed;

    /// <summary>
    /// The replica of <paramref name="definition"/>'s version, loading it first when this silo does not hold it
    /// (making room by evicting idle replicas); dispose the lease when the call that uses it ends. Throws
    /// <see cref="ModelUnavailableException"/> when it cannot load (no room, a failed load still backing off).
    /// </summary>
    public async Task<ModelLease> LeaseAsync(ModelDefinition definition, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var key = new ModelVersion(definition.Name, definition.Version);
        ModelReplica replica;
        lock (_gate)
        {
            if (_replicas.TryGetValue(key, out var known) && known.Failed)
            {
                if (DateTimeOffset.UtcNow < known.RetryAt)
                    throw new ModelUnavailableException(definition.Name, "it failed to load: " + known.Error, Math.Ceiling((known.RetryAt - DateTimeOffset.UtcNow).TotalSeconds));
                _replicas.Remove(key); // backed off long enough: this caller tries again
                known = new ModelReplica(definition, Needed(definition)) { Failures = known.Failures };
                Start(known);
            }
            else if (known is null)
            {
                if (!definition.Static && StaticModels.ContainsKey(definition.Name))
                    throw new ModelUnavailableException(definition.Name, "this silo serves its own model of that name");
                known = new ModelReplica(definition, Needed(definition));
                Start(known);
            }
            replica = known;
            replica.Leases++;
            replica.Retiring = false; // wanted again
            replica.LastUsed = DateTimeOffset.UtcNow;
        }
        try
        {
            var model = await replica.Loading!.WaitAsync(LoadWait, cancellationToken);
            return new ModelLease(this, replica, model, use: true);
        }
        catch (TimeoutException)
        {
            EndLease(replica, use: false);
            throw new ModelUnavailableException(definition.Name, $"it is still loading on this silo (past {LoadWait.TotalSeconds:F0} s); retry", 5);
        }
        catch
        {
            EndLease(replica, use: false);
            throw;
        }
    }

    /// <summary>A lease on the replica when this silo holds it loaded, for a look that is not a use (it stays as recently used as it was); null otherwise (nothing is loaded).</summary>
    public ModelLease? TryLease(ModelVersion key)
    {
        lock (_gate)
        {
            if (!_replicas.TryGetValue(key, out var replica) || replica.Model is not { } model) return null;
            replica.Leases++;
            return new ModelLease(this, replica, model, use: false);
        }
    }

    /// <summary>The definition of a replica this silo holds (any state), or null.</summary>
    public ModelDefinition? HeldDefinition(ModelVersion key)
    {
        lock (_gate) return _replicas.GetValueOrDefault(key)?.Definition;
    }

    private void Start(ModelReplica replica)
    {
        _replicas[replica.Key] = replica;
        replica.Loading = Task.Run(() => LoadReplicaAsync(replica));
    }

    private long Needed(ModelDefinition definition) =>
        (definition.MemoryBytes ?? ModelMemory.EstimateWeightBytes(definition.Source, definition.DType, definition.Quantization)) + _options.KvCacheBytes;

    internal void EndLease(ModelReplica replica, bool use)
    {
        lock (_gate)
        {
            replica.Leases--;
            if (use) replica.LastUsed = DateTimeOffset.UtcNow; // a long stream counts as used until it ends
        }
        if (replica.Retiring) SweepRetiring();
    }

    private async Task<HostedModel> LoadReplicaAsync(ModelReplica replica)
    {
        var definition = replica.Definition;
        try
        {
            if (!definition.Static) await MakeRoomAsync(replica);
            var model = await Load(definition);
            lock (_gate)
            {
                replica.Model = model;
                replica.Bytes = model.ParameterBytes + (model.Generation is null ? 0 : _options.KvCacheBytes);
                Count(definition.Name, _evicted.Remove(replica.Key) ? new ModelCounters(Loads: 1, Reloads: 1) : new ModelCounters(Loads: 1));
            }
            return model;
        }
        catch (Exception e)
        {
            // Tenants read the reason (a 503, /v1/models): it names the file's problem, not where the server keeps it.
            string reason = e is ModelUnavailableException unavailable ? unavailable.Message : Scrub(Reason(e), definition.Source);
            bool noRoom = e is ModelUnavailableException;
            lock (_gate)
            {
                if (noRoom) _replicas.Remove(replica.Key); // nothing wrong with the model: the next request may find room
                else
                {
                    replica.Failures++;
                    replica.Error = reason;
                    replica.RetryAt = DateTimeOffset.UtcNow + Backoff(replica.Failures);
                    Count(definition.Name, new ModelCounters(Failures: 1));
                }
            }
            if (!noRoom) _logger.LogError(e, "Model {Model} v{Version} failed to load: {Reason}", definition.Name, definition.Version, reason);
            throw noRoom ? e : new ModelUnavailableException(definition.Name, "it failed to load: " + reason, Backoff(replica.Failures).TotalSeconds);
        }
        finally { Changed?.Invoke(); }
    }

    private static string Scrub(string reason, string source) =>
        Path.IsPathRooted(source) || Directory.Exists(source) ? reason.Replace(Path.GetFullPath(source), "<checkpoint>").Replace(source, "<checkpoint>") : reason;

    private static string Reason(Exception e) => e is AggregateException { InnerException: { } inner } ? Reason(inner) : e.Message;

    private static TimeSpan Backoff(int failures) =>
        TimeSpan.FromSeconds(Math.Min(LastRetry.TotalSeconds, FirstRetry.TotalSeconds * Math.Pow(2, Math.Max(0, failures - 1))));

    /// <summary>Evicts idle replicas, least recently used first, until <paramref name="replica"/> fits; waits for busy ones up to <see cref="RoomWait"/>.</summary>
    private async Task MakeRoomAsync(ModelReplica replica)
    {
        var deadline = DateTimeOffset.UtcNow + RoomWait;
        while (true)
        {
            ModelReplica? victim;
            long free;
            lock (_gate)
            {
                free = BudgetBytes - _replicas.Values.Where(r => r != replica && !r.Failed).Sum(r => r.Held);
                if (free >= replica.Reserved) return;
                long pinned = _replicas.Values.Where(r => r.Definition.Static && !r.Failed).Sum(r => r.Held);
                if (replica.Reserved > BudgetBytes - pinned) // no eviction can ever make it fit: say so now, not after waiting
                    throw new ModelUnavailableException(replica.Definition.Name,
                        $"it needs {replica.Reserved >> 20} MB, more than this silo's {BudgetBytes >> 20} MB budget holds beside its pinned models ({pinned >> 20} MB)", 60);
                victim = _replicas.Values.Where(r => r != replica && Evictable(r))
                    .OrderByDescending(r => r.Retiring).ThenBy(r => (r.Model!.Generation?.Stats.Kept ?? 0) > 0).ThenBy(r => r.LastUsed).FirstOrDefault();
                if (victim is not null) _replicas.Remove(victim.Key);
            }
            if (victim is not null)
            {
                await EvictAsync(victim, $"to make room for {replica.Definition.Name}");
                continue;
            }
            var left = deadline - DateTimeOffset.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new ModelUnavailableException(replica.Definition.Name,
                    $"this silo has no room: it needs {replica.Reserved >> 20} MB and {Math.Max(0, free) >> 20} MB of {BudgetBytes >> 20} MB are free, the rest held by busy models");
            await Task.Delay(left < RoomPoll ? left : RoomPoll); // a busy replica becomes evictable when its last lease ends
        }
    }

    /// <summary>Loaded, not static, not in use: no lease, nothing running or waiting in its engines.</summary>
    private static bool Evictable(ModelReplica r) =>
        r.Model is { } model && !r.Definition.Static && r.Leases == 0 && model.ActiveSequences == 0;

    /// <summary>Spills the replica's kept conversations (when spilling is on; otherwise their sessions re-prefill), then frees it.</summary>
    private async Task EvictAsync(ModelReplica victim, string why)
    {
        _logger.LogInformation("Evicting model {Model} v{Version} {Why}", victim.Definition.Name, victim.Definition.Version, why);
        try { await SpillKeptAsync(victim.Model!); }
        catch (Exception e) { _logger.LogWarning(e, "Could not spill the kept conversations of {Model}; their sessions re-prefill", victim.Definition.Name); }
        victim.Model!.Dispose();
        lock (_gate)
        {
            _evicted.Add(victim.Key);
            Count(victim.Definition.Name, new ModelCounters(Evictions: 1));
        }
        Changed?.Invoke();
    }

    private void Count(string model, ModelCounters add) => _counters[model] = _counters.GetValueOrDefault(model, new ModelCounters()).Plus(add);

    /// <summary>Marks a replica to go once it is idle (a superseded version, an unloaded or deleted model); static models stay.</summary>
    public void Retire(ModelVersion key)
    {
        lock (_gate)
        {
            if (!_replicas.TryGetValue(key, out var replica) || replica.Definition.Static) return;
            if (replica.Failed) { _replicas.Remove(key); return; }
            replica.Retiring = true;
        }
        SweepRetiring();
    }

    /// <summary>Evicts every retiring replica that has become idle.</summary>
    public void SweepRetiring()
    {
        List<ModelReplica> idle;
        lock (_gate)
        {
            idle = _replicas.Values.Where(r => r.Retiring && Evictable(r)).ToList();
            foreach (var r in idle) _replicas.Remove(r.Key);
        }
        foreach (var r in idle) _ = EvictAsync(r, "as the catalog asked");
    }

    /// <summary>What this silo holds, for its report to the catalog.</summary>
    public IReadOnlyList<ReplicaStatus> Replicas(string silo)
    {
        lock (_gate)
            return _replicas.Values.Select(r =>
            {
                var stats = r.Model?.Generation?.Stats;
                string state = r.Failed ? ModelStates.Failed : r.Model is null ? ModelStates.Loading : ModelStates.Loaded;
                return new ReplicaStatus(r.Definition.Name, r.Definition.Version, silo, state, stats?.Running ?? 0, stats?.Waiting ?? 0,
                    r.Held, r.LastUsed, r.Error, r.Definition.Static, r.Model is { } m ? [m.Head] : null,
                    r.Model?.Generation?.Stats.Kept ?? 0, r.Failed ? r.RetryAt : null, r.Leases);
            }).ToList();
    }

    public IReadOnlyDictionary<string, ModelCounters> Counters()
    {
        lock (_gate) return new Dictionary<string, ModelCounters>(_counters);
    }

    /// <summary>Running and waiting sequences over all loaded engines.</summary>
    public int ActiveSequences => Loaded().Sum(m => m.ActiveSequences);

    /// <summary>The generation streams callers are still reading (the drain waits for them).</summary>
    public OpenStreams Streams { get; } = new();

    /// <summary>Refuses new generations from now on; returns how many sequences are still active.</summary>
    public int StopAdmitting()
    {
        _draining = true;
        return ActiveSequences;
    }

    private List<HostedModel> Loaded()
    {
        lock (_gate) return _replicas.Values.Where(r => r.Model is not null).Select(r => r.Model!).ToList();
    }

    /// <summary>
    /// A stopping silo's kept conversations go to its disk (when spilling is on), so each session's next activation here
    /// restores its KV instead of recomputing it; the silo spills them itself because, by the time sessions deactivate,
    /// grain calls to the workers no longer reach this silo. Returns how many were spilled.
    /// </summary>
    public async Task<int> SpillKeptAsync()
    {
        int spilled = 0;
        foreach (var model in Loaded()) spilled += await SpillKeptAsync(model);
        return spilled;
    }

    private async Task<int> SpillKeptAsync(HostedModel model)
    {
        if (Spills is not { } spills || model.Generation is not { } engine) return 0;
        int spilled = 0;
        foreach (var (owner, snapshot) in await engine.ExportAllKeptAsync())
            using (snapshot)
            {
                await SpillAsync(spills, model, engine, owner, snapshot);
                spilled++;
            }
        return spilled;
    }

    /// <summary>One kept conversation's KV written to this silo's disk, then freed in its engine (in that order: a failed write loses nothing).</summary>
    internal static async Task SpillAsync(KvSpillStore spills, HostedModel model, GenerationEngine engine, string owner, KvSnapshot snapshot)
    {
        await Task.Run(() => spills.Spill(owner, snapshot, model.Fingerprint));
        engine.Release(owner);
    }

    /// <summary>Starts loading every static model (the silo calls this at start-up).</summary>
    public Task LoadAllAsync() => Task.WhenAll(StaticModels.Values.Select(async d => (await LeaseAsync(d)).Dispose()));

    private async Task<HostedModel> Load(ModelDefinition definition)
    {
        string name = definition.Name, source = definition.Source;
        if (definition.Device == "cuda" && !Gpu) throw new ArgumentException("it needs a GPU and this silo has none");
        _logger.LogInformation("Loading model {Model} v{Version} from {Source}", name, definition.Version, source);
        var started = DateTime.UtcNow;
        long lastLogged = -1;
        var progress = new Progress<DownloadProgress>(p =>
        {
            long percent = p.BytesTotal is > 0 ? 100 * p.BytesDone / p.BytesTotal.Value : -1;
            if (percent / 10 == lastLogged / 10) return;
            lastLogged = percent;
            _logger.LogInformation("Model {Model}: downloading {File} {Percent}%", name, p.File, percent);
        });
        string? folder = await _store.ResolveAsync(source, progress);
        double resolved = (DateTime.UtcNow - started).TotalSeconds, weights = 0; // where a slow load spent its time
        var config = folder is null ? null : Gpt2Config.FromFile(Path.Combine(folder, "config.json"));
        var loadOptions = new ModelLoadOptions
        {
            Device = definition.Device == "cuda" ? _options.Device : "cpu",
            DType = DeviceSpec.ParseDType(definition.DType),
            // The definition's quantization applies to dense checkpoints; one written by `gpt2o quantize` is served as it is.
            Quantization = config?.Quantization is null && definition.Quantization is { } q ? ModelQuantization.Validate(q) : null,
            Log = line => _logger.LogInformation("Model {Model}: {Line}", name, line),
        };
        var architectures = config?.Architectures ?? [];
        var tokenizer = folder is null ? Gpt2Tokenizer.Default : Gpt2Tokenizer.FromDirectory(folder);
        HostedModel hosted;
        string head = ModelHeads.Of(architectures);
        if (head != ModelHeads.LanguageModel)
        {
            Gpt2PreTrainedModel oneShot = head switch
            {
                ModelHeads.SequenceClassification => Gpt2ForSequenceClassification.FromPretrained(folder!, loadOptions),
                ModelHeads.TokenClassification => Gpt2ForTokenClassification.FromPretrained(folder!, loadOptions),
                ModelHeads.QuestionAnswering => Gpt2ForQuestionAnswering.FromPretrained(folder!, loadOptions),
                _ => Gpt2DoubleHeadsModel.FromPretrained(folder!, loadOptions),
            };
            weights = (DateTime.UtcNow - started).TotalSeconds;
            hosted = new HostedModel(name, source, oneShot, tokenizer, new GenerationConfig(), null,
                new OnePassEngine(oneShot, tokenizer, maxWaitingRequests: _options.MaxWaitingRequests));
        }
        else
        {
            var model = folder is null ? DefaultModel.Create(loadOptions) : Gpt2LMHeadModel.FromPretrained(folder, loadOptions);
            weights = (DateTime.UtcNow - started).TotalSeconds;
            var defaults = folder is null ? new GenerationConfig() : GenerationConfig.FromDirectory(folder);
            var engine = new GenerationEngine(model, tokenizer, new EngineOptions
            {
                ModelName = name,
                KvDType = _options.KvScalarType,
                KvCacheBytes = _options.KvCacheBytes,
                MaxRunningSequences = _options.MaxRunningSequences,
                MaxWaitingRequests = _options.MaxWaitingRequests,
                BatchInvariant = _options.BatchInvariant,
            });
            hosted = new HostedModel(name, source, model, tokenizer, defaults, engine, new OnePassEngine(model, tokenizer, maxWaitingRequests: _options.MaxWaitingRequests));
        }
        _logger.LogInformation("Model {Model} v{Version} loaded in {Seconds:F2} s (checkpoint found at {Resolved:F2} s, weights in place at {Weights:F2} s): " +
            "compute {DType}, weights {Quantization}, {Megabytes:F0} MB, KV cache {KvDType}", name,
            definition.Version, (DateTime.UtcNow - started).TotalSeconds, resolved, weights, DeviceSpec.DTypeName(hosted.Model.DType), hosted.Model.Quantization?.Name ?? "dense",
            hosted.ParameterBytes / 1e6, hosted.Generation is { } generation ? DeviceSpec.DTypeName(generation.KvDType) : "none");
        return hosted;
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var model in Loaded()) model.Dispose();
    }
}
