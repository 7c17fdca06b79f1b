using Gpt2Orleans.Grains.Placement;
using Gpt2Orleans.Grains.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// Tells the catalog what this silo holds every <see cref="Interval"/> (and at once when a replica loads, fails or
/// goes), and carries out its answer: loads the replicas it asks for, retires those it no longer wants, and keeps
/// this silo's router and load view fresh from the cluster's list it sends back.
/// </summary>
public sealed class ModelReporter(ModelHost host, ILocalSiloDetails silo, IGrainFactory grains, ModelRouter router, SiloLoadView load,
    ILogger<ModelReporter> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _changed = new(0);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        host.Changed += Signal;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try { await ReportAsync(); }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    logger.LogDebug(e, "Could not report this silo's models to the catalog");
                }
                try { await _changed.WaitAsync(Interval, stoppingToken); }
                catch (OperationCanceledException) { break; }
                while (_changed.CurrentCount > 0) _changed.Wait(0); // one report covers every change so far
            }
        }
        finally { host.Changed -= Signal; }
    }

    private void Signal() => _changed.Release();

    private async Task ReportAsync()
    {
        host.SweepRetiring();
        string address = silo.SiloAddress.ToParsableString();
        var report = new SiloReport(address, host.BudgetBytes, host.KvBytesPerModel, host.Gpu, host.Replicas(address), host.Counters());
        var directives = await grains.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).Report(report).WaitAsync(Interval * 5);
        router.Update(directives.Models, Interval * 3);
        load.ReportAll(directives.Models.SelectMany(m => m.Replicas).GroupBy(r => r.Silo)
            .ToDictionary(g => SiloAddress.FromParsableString(g.Key), g => g.Sum(r => r.Load)));
        foreach (var key in directives.Unload) host.Retire(key);
        foreach (var definition in directives.Load) _ = WarmAsync(definition);
    }

    private async Task WarmAsync(ModelDefinition definition)
    {
        try { (await host.LeaseAsync(definition)).Dispose(); }
        catch (Exception e) { logger.LogWarning("Replica of {Model} v{Version} did not load: {Reason}", definition.Name, definition.Version, e.Message); }
    }
}
