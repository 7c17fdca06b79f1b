using Gpt2Orleans.Grains.Hosting;
using Gpt2Orleans.Grains.Models;
using Orleans.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using StackExchange.Redis;

namespace Gpt2Orleans.Silo;

/// <summary>Turns <see cref="SiloSettings"/> into an Orleans silo: clustering, storage, and the models this silo serves.</summary>
public static class SiloHosting
{
    public static void Configure(ISiloBuilder silo, SiloSettings settings)
    {
        settings.Validate();
        silo.Configure<ClusterOptions>(o => { o.ClusterId = settings.ClusterId; o.ServiceId = settings.ServiceId; });
        switch (settings.Clustering)
        {
            case "localhost":
                var primary = settings.PrimarySiloPort is { } port ? new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port) : null;
                silo.UseLocalhostClustering(settings.SiloPort, settings.GatewayPort, primary, settings.ServiceId, settings.ClusterId);
                break;
            case "redis":
                silo.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(settings.Redis!));
                // One machine by default; containers (compose) advertise their own host name and listen on every address.
                if (settings.AdvertisedHost is { } host) silo.ConfigureEndpoints(host, settings.SiloPort, settings.GatewayPort, listenOnAnyHostAddress: true);
                else silo.ConfigureEndpoints(System.Net.IPAddress.Loopback, settings.SiloPort, settings.GatewayPort, listenOnAnyHostAddress: false);
                break;
            case "adonet":
                silo.UseAdoNetClustering(o => { o.Invariant = settings.AdoNetInvariant; o.ConnectionString = settings.AdoNetConnectionString; });
                silo.ConfigureEndpoints(settings.SiloPort, settings.GatewayPort);
                break;
            case "kubernetes":
                // Orleans' Kubernetes hosting names the silo after its pod, advertises the pod's IP, listens on every
                // address and marks silos whose pods are gone dead; it keeps no membership table, so Redis does.
                silo.UseKubernetesHosting();
                silo.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(settings.Redis!));
                silo.Configure<EndpointOptions>(o => { o.SiloPort = settings.SiloPort; o.GatewayPort = settings.GatewayPort; });
                break;
        }
        silo.AddActivityPropagation(); // grain calls get spans under the caller's trace (made only when a tracer listens)
        if (settings.Storage == "azureblob") silo.AddGpt2OrleansBlobStorage(settings.BlobConnectionString!, settings.BlobContainer);
        else silo.AddGpt2OrleansFileStorage(Path.GetFullPath(settings.DataDirectory));
        silo.AddGpt2Orleans(new ModelHostOptions
        {
            Models = settings.ParseModels(),
            ChatTemplates = settings.ChatTemplates,
            BlobConnectionString = settings.BlobConnectionString,
            Device = settings.Device,
            DType = settings.DType,
            Quantize = settings.Quantize,
            GroupSize = settings.GroupSize,
            KvDType = settings.KvDType,
            KvCacheBytes = settings.KvCacheMegabytes << 20,
            MemoryBudgetBytes = settings.ModelMemoryMegabytes << 20,
            MaxRunningSequences = settings.MaxRunningSequences,
            MaxWaitingRequests = settings.MaxWaitingRequests,
            BatchInvariant = settings.BatchInvariant,
            DrainSeconds = settings.DrainSeconds,
            SpillDirectory = settings.SpillKv ? Path.GetFullPath(Path.Combine(settings.DataDirectory, "kv-spill", $"silo-{settings.SiloPort}")) : null,
        }, gpu: settings.Device.StartsWith("cuda", StringComparison.Ordinal));
        silo.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(settings.DrainSeconds + 30));
    }
}
