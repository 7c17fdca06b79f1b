using Gpt2Orleans.Grains.Models;
using Gpt2Orleans.Grains.Placement;
using Gpt2Orleans.Grains.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Hosting;
using Orleans.Storage;

namespace Gpt2Orleans.Grains.Hosting;

/// <summary>Everything a silo needs to host Gpt2Orleans grains: the model host, silo metadata, placement and (optionally) file storage.</summary>
public static class Gpt2OrleansSiloExtensions
{
    public static ISiloBuilder AddGpt2Orleans(this ISiloBuilder silo, ModelHostOptions models, bool gpu = false)
    {
        models.Validate();
        silo.UseSiloMetadata(SiloModels.Metadata(models.Models.Keys.Select(models.StaticDefinition).ToList(), gpu, models.DType));
        silo.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(models));
        silo.Services.AddSingleton(_ => ModelStore.CreateDefault(models.BlobConnectionString));
        silo.Services.AddSingleton<ModelHost>();
        silo.Services.AddSingleton<SiloLoadView>();
        silo.Services.AddSingleton(services => new Routing.ModelRouter(services.GetRequiredService<IGrainFactory>(), TimeProvider.System));
        silo.Services.AddHostedService<ModelReporter>();
        silo.Services.AddHostedService<ModelDrainService>();
        silo.Services.AddPlacementDirector<ModelWorkerPlacement, ModelWorkerPlacementDirector>();
        silo.Services.AddPlacementDirector<ServingSiloPlacement, ServingSiloPlacementDirector>();
        return silo;
    }

    /// <summary>The grain stores in one Azure Blob container (created at start-up).</summary>
    public static ISiloBuilder AddGpt2OrleansBlobStorage(this ISiloBuilder silo, string connectionString, string container)
    {
        foreach (var name in StoreNames)
            silo.Services.AddGrainStorage(name, (services, _) => new BlobGrainStorage(connectionString, container,
                services.GetRequiredService<IGrainStorageSerializer>(), services.GetRequiredService<Microsoft.Extensions.Logging.ILogger<BlobGrainStorage>>()));
        return silo;
    }

    private static readonly string[] StoreNames = [StorageNames.Sessions, StorageNames.Tenants, StorageNames.Catalog];

    /// <summary>The grain stores as files under <paramref name="root"/>.</summary>
    public static ISiloBuilder AddGpt2OrleansFileStorage(this ISiloBuilder silo, string root)
    {
        foreach (var name in StoreNames)
            silo.Services.AddGrainStorage(name, (services, _) => new FileGrainStorage(Path.Combine(root, name), services.GetRequiredService<IGrainStorageSerializer>()));
        return silo;
    }
}
