using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>Every few seconds asks each live silo's model workers for their load and records it in <see cref="SiloLoadView"/>.</summary>
public sealed class SiloLoadRefresher(IClusterMembershipService membership, ISiloMetadataCache metadata, IGrainFactory grains,
    SiloLoadView view, ILogger<SiloLoadRefresher> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            foreach (var silo in ActiveSilos.Of(membership))
            {
                try
                {
                    int load = 0;
                    foreach (var model in SiloModels.Served(metadata.GetSiloMetadata(silo)))
                    {
                        var status = await grains.GetGrain<IModelGrain>(GrainKeys.ModelWorker(model, silo.ToParsableString()))
                            .GetStatus().WaitAsync(Interval, stoppingToken);
                        load += status.Running + status.Waiting;
                    }
                    view.Report(silo, load);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    logger.LogDebug(e, "Could not read the load of silo {Silo}", silo);
                }
            }
        }
    }
}
