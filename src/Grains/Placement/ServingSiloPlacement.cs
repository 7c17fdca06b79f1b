using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Placement;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>
/// A session activates on a live silo that serves its model (named by the caller in the RequestContext,
/// <see cref="GrainKeys.ModelContextKey"/>): one started with it, else one holding it loaded as the latest catalog
/// list says, else (a cold model) any; the least loaded one by its engines' running and waiting sequences.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class ServingSiloPlacement : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class)]
public sealed class ServingSiloPlacementAttribute() : PlacementAttribute(new ServingSiloPlacement());

public sealed class ServingSiloPlacementDirector(ISiloMetadataCache metadata, SiloLoadView load, Routing.ModelRouter router) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var compatible = context.GetCompatibleSilos(target);
        var model = target.RequestContextData?.GetValueOrDefault(GrainKeys.ModelContextKey) as string;
        // Without a model named (an internal call), any silo will do: the session finds its model's workers itself.
        if (model is null) return Task.FromResult(load.LeastLoaded(compatible));
        var started = compatible.Where(s => SiloModels.Serves(metadata.GetSiloMetadata(s), model)).ToArray();
        var holding = router.Latest?.FirstOrDefault(m => m.Definition.Name == model) is { Definition.Static: false } info
            ? compatible.Where(s => info.Silos.Contains(s.ToParsableString())).ToArray() : [];
        var candidates = started.Length > 0 ? started : holding.Length > 0 ? holding : compatible;
        return Task.FromResult(load.LeastLoaded(candidates));
    }
}
