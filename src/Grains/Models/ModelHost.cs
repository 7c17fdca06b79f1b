using System.Collections.Concurrent;
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
/// The models this silo serves, each loaded once (on first use or at start-up) with its own engine. Model grains
/// front these engines; the engines outlive grain activations, so a session's kept KV survives a model grain's
/// deactivation and lives as long as the silo.
/// </summary>
public sealed class ModelHost : IDisposable
{
    private readonly ModelHostOptions _options;
    private readonly ModelStore _store;
    private readonly ILogger<ModelHost> _logger;
    private readonly ConcurrentDictionary<string, Lazy<Task<HostedModel>>> _models = new();
    private volatile bool _disposed;
    private volatile bool _draining;

    public ModelHost(IOptions<ModelHostOptions> options, ModelStore store, ILogger<ModelHost> logger)
    {
        _options = options.Value;
        _options.Validate();
        _store = store;
        _logger = logger;
        if (_options.SpillDirectory is { } spill) Spills = new KvSpillStore(spill);
    }

    /// <summary>This silo's spilled conversations, or null when spilling is off.</summary>
    public KvSpillStore? Spills { get; }

    /// <summary>The loaded model, loading it on first use; throws <see cref="ModelUnavailableException"/> when this silo does not serve it.</summary>
    public Task<HostedModel> GetAsync(string model)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_options.Models.TryGetValue(model, out var source))
            throw new ModelUnavailableException(model, "this silo does not serve it");
        var lazy = _models.GetOrAdd(model, name => new Lazy<Task<HostedModel>>(() => Task.Run(() => Load(name, source))));
        if (lazy.Value.IsFaulted) _models.TryRemove(new(model, lazy)); // a failed load is retried by the next caller
        return lazy.Value;
    }

    public TimeSpan DrainTimeout => TimeSpan.FromSeconds(_options.DrainSeconds);

    /// <summary>Whether new generations are refused because the silo is shutting down.</summary>
    public bool Draining => _draining;

    /// <summary>Running and waiting sequences over all loaded engines.</summary>
    public int ActiveSequences => Loaded().Sum(m => m.Generation is { } engine ? engine.Stats.Running + engine.Stats.Waiting : 0);

    /// <summary>Refuses new generations from now on; returns how many sequences are still active.</summary>
    public int StopAdmitting()
    {
        _draining = true;
        return ActiveSequences;
    }

    private IEnumerable<HostedModel> Loaded() =>
        _models.Values.Where(l => l.IsValueCreated && l.Value.IsCompletedSuccessfully).Select(l => l.Value.Result);

    /// <summary>
    /// A stopping silo's kept conversations go to its disk (when spilling is on), so each session's next activation here
    /// restores its KV instead of recomputing it; the silo spills them itself because, by the time sessions deactivate,
    /// grain calls to the workers no longer reach this silo. Returns how many were spilled.
    /// </summary>
    public async Task<int> SpillKeptAsync()
    {
        if (Spills is not { } spills) return 0;
        int spilled = 0;
        foreach (var model in Loaded())
        {
            if (model.Generation is not { } engine) continue;
            foreach (var (owner, snapshot) in await engine.ExportAllKeptAsync())
                using (snapshot)
                {
                    await SpillAsync(spills, model, engine, owner, snapshot);
                    spilled++;
                }
        }
        return spilled;
    }

    /// <summary>One kept conversation's KV written to this silo's disk, then freed in its engine (in that order: a failed write loses nothing).</summary>
    internal static async Task SpillAsync(KvSpillStore spills, HostedModel model, GenerationEngine engine, string owner, KvSnapshot snapshot)
    {
        await Task.Run(() => spills.Spill(owner, snapshot, model.Fingerprint));
        engine.Release(owner);
    }

    /// <summary>Starts loading every served model (the silo calls this at start-up).</summary>
    public Task LoadAllAsync() => Task.WhenAll(_options.Models.Keys.Select(GetAsync));

    private async Task<HostedModel> Load(string name, string source)
    {
        _logger.LogInformation("Loading model {Model} from {Source}", name, source);
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
        var config = folder is null ? null : Gpt2Config.FromFile(Path.Combine(folder, "config.json"));
        var loadOptions = new ModelLoadOptions
        {
            Device = _options.Device,
            DType = DeviceSpec.ParseDType(_options.DType),
            // The silo's --quantize applies to dense checkpoints; one written by `gpt2o quantize` is served as it is.
            Quantization = config?.Quantization is null ? _options.Quantization : null,
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
            hosted = new HostedModel(name, source, oneShot, tokenizer, new GenerationConfig(), null,
                new OnePassEngine(oneShot, tokenizer, maxWaitingRequests: _options.MaxWaitingRequests));
        }
        else
        {
            var model = folder is null ? DefaultModel.Create(loadOptions) : Gpt2LMHeadModel.FromPretrained(folder, loadOptions);
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
        _logger.LogInformation("Model {Model} loaded in {Seconds:F1} s: compute {DType}, weights {Quantization}, {Megabytes:F0} MB, KV cache {KvDType}", name,
            (DateTime.UtcNow - started).TotalSeconds, DeviceSpec.DTypeName(hosted.Model.DType), hosted.Model.Quantization?.Name ?? "dense", hosted.ParameterBytes / 1e6,
            hosted.Generation is { } generation ? DeviceSpec.DTypeName(generation.KvDType) : "none");
        return hosted;
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var model in Loaded()) model.Dispose();
    }
}
