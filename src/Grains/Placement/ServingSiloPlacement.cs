using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Placement;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>
/// A session activates on a live silo that serves its model (named by the caller in the RequestContext,
/// <see cref="GrainKeys.ModelContextKey"/>), the least loaded one by its engines' running and waiting sequences.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class ServingSiloPlacement : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class)]
public sealed class ServingSiloPlacementAttribute() : PlacementAttribute(new ServingSiloPlacement());

public sealed class ServingSiloPlacementDirector(ISiloMetadataCache metadata, SiloLoadView load) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var compatible = context.GetCompatibleSilos(target);
        var model = target.RequestContextData?.GetValueOrDefault(GrainKeys.ModelContextKey) as string;
        // Without a model named (an internal call), any silo will do: the session finds its model's workers itself.
        var candidates = model is null ? compatible : compatible.Where(s => SiloModels.Serves(metadata.GetSiloMetadata(s), model)).ToArray();
        if (candidates.Length == 0) throw new ModelUnavailableException(model!, "no live silo serves it");
        return Task.FromResult(load.LeastLoaded(candidates));
    }
}
