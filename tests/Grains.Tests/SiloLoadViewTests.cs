using System.Net;
using Gpt2Orleans.Grains.Placement;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Tests;

public sealed class SiloLoadViewTests
{
    private static SiloAddress Silo(int port) => SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 1);

    [Fact]
    public void The_least_loaded_candidate_wins_and_ties_spread_at_random()
    {
        var view = new SiloLoadView();
        SiloAddress a = Silo(1), b = Silo(2), c = Silo(3);
        view.ReportAll(new Dictionary<SiloAddress, int> { [a] = 5, [b] = 2, [c] = 9 });
        Assert.Equal(b, view.LeastLoaded([a, b, c]));
        Assert.Equal(a, view.LeastLoaded([a, c])); // only the candidates count

        view.ReportAll(new Dictionary<SiloAddress, int> { [a] = 2, [b] = 2, [c] = 9 });
        var chosen = Enumerable.Range(0, 200).Select(_ => view.LeastLoaded([a, b, c])).ToHashSet();
        Assert.Equal(new HashSet<SiloAddress> { a, b }, chosen);
        Assert.Equal(c, new SiloLoadView().LeastLoaded([c])); // unknown load counts as idle
        view.ReportAll(new Dictionary<SiloAddress, int> { [c] = 0 });
        Assert.Equal(0, view.LoadOf(a)); // a silo the report leaves out carries no load
    }
}
