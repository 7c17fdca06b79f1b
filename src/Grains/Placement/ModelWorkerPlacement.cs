using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>A model worker ("model|silo|version") activates on exactly the silo its key names (the catalog chose it), while that silo is in the cluster.</summary>
[GenerateSerializer, Immutable]
public sealed class ModelWorkerPlacement : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class)]
public sealed class ModelWorkerPlacementAttribute() : PlacementAttribute(new ModelWorkerPlacement());

public sealed class ModelWorkerPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var (model, silo, _) = GrainKeys.ParseModelWorker(target.GrainIdentity.Key.ToString()!);
        var chosen = context.GetCompatibleSilos(target).FirstOrDefault(s => s.ToParsableString() == silo)
            ?? throw new ModelUnavailableException(model, $"silo {silo} is not in the cluster", 1);
        return Task.FromResult(chosen);
    }
}
