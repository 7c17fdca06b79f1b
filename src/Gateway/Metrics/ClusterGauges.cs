using Gpt2Orleans.Grains;
using Prometheus;

namespace Gpt2Orleans.Gateway.Metrics;

/// <summary>
/// Before each scrape, asks every model worker in the catalog for its status and sets the per-model, per-silo
/// gauges (queue, running sequences, KV blocks), and each model's lifecycle (loads, reloads, evictions, failures,
/// state, memory per silo) from the catalog, so a standalone gateway reports the whole cluster. Workers and models
/// that are gone lose their series; a worker that does not answer in time keeps its last values.
/// </summary>
public sealed class ClusterGauges(IClusterClient cluster, ILogger<ClusterGauges> logger)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(2);
    private HashSet<(string Model, string Silo)> _reported = [];
    private HashSet<(string Model, string Silo)> _replicas = [];
    private HashSet<string> _models = [];

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        HashSet<(string, string)> seen;
        try
        {
            var models = await cluster.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).ListModels().WaitAsync(Deadline, cancellationToken);
            foreach (var model in models) GatewayMetrics.SetModel(model);
            foreach (var gone in _models.Except(models.Select(m => m.Definition.Name))) GatewayMetrics.RemoveModel(gone);
            _models = models.Select(m => m.Definition.Name).ToHashSet();
            var replicas = models.SelectMany(m => m.Replicas.Select(r => (m.Definition.Name, r.Silo))).ToHashSet();
            foreach (var (model, silo) in _replicas.Except(replicas)) GatewayMetrics.RemoveReplica(model, silo);
            _replicas = replicas;
            var workers = models.SelectMany(m => m.Silos.Select(s => (Model: m.Definition.Name, Silo: s, m.Definition.Version))).ToList();
            seen = workers.Select(w => (w.Model, w.Silo)).ToHashSet();
            await Task.WhenAll(workers.Select(async w =>
            {
                try
                {
                    var status = await cluster.GetGrain<IModelGrain>(GrainKeys.ModelWorker(w.Model, w.Silo, w.Version)).GetStatus().WaitAsync(Deadline, cancellationToken);
                    GatewayMetrics.SetWorker(w.Model, w.Silo, status);
                }
                catch (Exception e) when (e is TimeoutException or Gpt2OrleansException or OrleansException)
                {
                    logger.LogDebug(e, "No status from {Model} on {Silo}", w.Model, w.Silo);
                }
            }));
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            logger.LogDebug(e, "No catalog for the metrics");
            return;
        }
        foreach (var (model, silo) in _reported.Except(seen)) GatewayMetrics.RemoveWorker(model, silo);
        _reported = seen;
    }
}
