using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Placement;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>A model worker ("model|silo") activates on exactly the silo its key names, and only if that silo serves the model.</summary>
[GenerateSerializer, Immutable]
public sealed class ModelWorkerPlacement : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class)]
public sealed class ModelWorkerPlacementAttribute() : PlacementAttribute(new ModelWorkerPlacement());

public sealed class ModelWorkerPlacementDirector(ISiloMetadataCache metadata) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var (model, silo) = GrainKeys.ParseModelWorker(target.GrainIdentity.Key.ToString()!);
        var chosen = context.GetCompatibleSilos(target).FirstOrDefault(s => s.ToParsableString() == silo)
            ?? throw new ModelUnavailableException(model, $"silo {silo} is not in the cluster");
        if (!SiloModels.Serves(metadata.GetSiloMetadata(chosen), model))
            throw new ModelUnavailableException(model, $"silo {silo} does not serve it");
        return Task.FromResult(chosen);
    }
}
