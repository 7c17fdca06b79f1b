namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// One model version on this silo as <see cref="ModelHost"/> tracks it (under its lock): its load, the bytes it
/// reserves in the budget while loading and holds once loaded, its leases, when it was last used, whether it is to
/// go once idle, and a failed load's reason and next try.
/// </summary>
internal sealed class ModelReplica(ModelDefinition definition, long reserved)
{
    public ModelDefinition Definition { get; } = definition;
    public ModelVersion Key { get; } = new(definition.Name, definition.Version);
    public long Reserved { get; } = reserved;
    public Task<HostedModel>? Loading { get; set; }
    public HostedModel? Model { get; set; }
    public long Bytes { get; set; }
    public int Leases { get; set; }
    public DateTimeOffset LastUsed { get; set; } = DateTimeOffset.UtcNow;
    public bool Retiring { get; set; }
    public string? Error { get; set; }
    public int Failures { get; set; }
    public DateTimeOffset RetryAt { get; set; }
    public bool Failed => Model is null && Error is not null;
    /// <summary>What it counts against the budget: its estimate while loading, its real size once loaded.</summary>
    public long Held => Model is null ? Reserved : Bytes;
}

/// <summary>A loaded replica held for one call: it cannot be evicted until the lease is disposed.</summary>
public sealed class ModelLease : IDisposable
{
    private readonly ModelHost _host;
    private readonly ModelReplica _replica;
    private readonly bool _use;
    private int _disposed;

    /// <param name="use">whether this is a use of the model (a request) that makes it recently used, or only a look (status, release)</param>
    internal ModelLease(ModelHost host, ModelReplica replica, HostedModel model, bool use)
    {
        _host = host;
        _replica = replica;
        _use = use;
        Model = model;
    }

    public HostedModel Model { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _host.EndLease(_replica, _use);
    }
}
