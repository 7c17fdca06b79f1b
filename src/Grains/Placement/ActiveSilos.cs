using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>The silos that membership currently lists as active: the only ones a model can be served from.</summary>
public static class ActiveSilos
{
    public static IEnumerable<SiloAddress> Of(IClusterMembershipService membership) =>
        membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress);
}
