using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// Graceful shutdown: loads the served models at start-up, and on stop refuses new generations, lets running ones
/// finish and their streams be read to the end (up to the drain deadline) while the silo is still up, then spills the
/// conversations' kept KV to disk.
/// Sessions persist their transcripts after every turn, so nothing else needs saving.
/// </summary>
public sealed class ModelDrainService(ModelHost host, ILogger<ModelDrainService> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = host.LoadAllAsync().ContinueWith(t => logger.LogError(t.Exception, "A model failed to load"), TaskContinuationOptions.OnlyOnFaulted);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        int running = host.StopAdmitting();
        if (running > 0) logger.LogInformation("Draining: waiting for {Count} running or waiting sequences (up to {Seconds} s)", running, host.DrainTimeout.TotalSeconds);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(host.DrainTimeout);
        while ((host.ActiveSequences > 0 || host.Streams.Count > 0) && !deadline.IsCancellationRequested)
            await Task.Delay(100, CancellationToken.None);
        if (host.ActiveSequences > 0 || host.Streams.Count > 0)
            logger.LogWarning("Drain deadline reached with {Count} sequences running and {Streams} streams open", host.ActiveSequences, host.Streams.Count);
        int spilled = await host.SpillKeptAsync();
        if (spilled > 0) logger.LogInformation("Spilled the KV of {Count} conversations to disk", spilled);
    }
}
