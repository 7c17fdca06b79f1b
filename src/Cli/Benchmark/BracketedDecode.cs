namespace Gpt2Orleans.Cli.Benchmark;

/// <summary>One decode run between two bandwidth probes: its rate, the bandwidth around it, and its share of that bandwidth's bound.</summary>
public sealed record BracketedRun(double TokensPerSecond, double BandwidthGBps, double FractionOfBound);

/// <summary>
/// A single stream's decode judged against the bandwidth measured just before and just after it, run by run. Why
/// beside the start-of-run bound: that probe is a best-of-ten peak, and on this shared machine the bandwidth a later
/// run gets moves by a quarter or more, so the same code scored 61–95 % between runs. Each run here is judged by its
/// own moment's bound (the mean of its two probes, each the best of two passes), so the fraction follows the code.
/// </summary>
public static class BracketedDecode
{
    public static IReadOnlyList<BracketedRun> Measure(BandwidthProbe probe, long weightBytes, int runs, Func<double> decodeTokensPerSecond) =>
        Alternated(probe, weightBytes, runs, [decodeTokensPerSecond])[0];

    /// <summary>
    /// Several ways of decoding the same stream (through HTTP, in process), taken in turn run by run so that each sees
    /// the same moments of the machine, every run between two probes; one list of runs per decoder.
    /// </summary>
    public static IReadOnlyList<BracketedRun>[] Alternated(BandwidthProbe probe, long weightBytes, int runs, IReadOnlyList<Func<double>> decoders)
    {
        // MachineBounds holds the rule for which probe bounds a decode (the faster of the two); no matmul is measured here.
        double Now() => MachineBounds.Measure(probe, [], repeats: 2).BandwidthGBps;
        var results = decoders.Select(_ => new List<BracketedRun>()).ToArray();
        double before = Now();
        for (int r = 0; r < runs; r++)
            for (int d = 0; d < decoders.Count; d++)
            {
                double rate = decoders[d]();
                double after = Now();
                double bandwidth = (before + after) / 2;
                results[d].Add(new BracketedRun(rate, bandwidth, rate * weightBytes / (bandwidth * 1e9)));
                before = after; // the probe after one run is the probe before the next
            }
        return results;
    }

    /// <summary>"a–b tok/s, c–d % of the bound probed around each run (median m %, over n runs)".</summary>
    public static string Describe(IReadOnlyList<BracketedRun> runs)
    {
        var fractions = runs.Select(r => r.FractionOfBound).ToList();
        return $"{runs.Min(r => r.TokensPerSecond):F1}–{runs.Max(r => r.TokensPerSecond):F1} tok/s, {fractions.Min():P0}–{fractions.Max():P0} of the bound " +
            $"probed around each run (median {Percentiles.Of(fractions).P50:P0}; bandwidth {runs.Min(r => r.BandwidthGBps):F1}–{runs.Max(r => r.BandwidthGBps):F1} GB/s; {runs.Count} runs)";
    }
}
