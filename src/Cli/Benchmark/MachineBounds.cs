using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Cli.Benchmark;

/// <summary>
/// What this machine can do right now, measured in the same run as the figures it judges (the machine is shared
/// and noisy): memory bandwidth (STREAM triad and a read-only sum, all cores, best of several) and matrix-multiply rate per dtype.
/// </summary>
public sealed record MachineBounds(double TriadGBps, double ReadGBps, IReadOnlyDictionary<ScalarType, double> MatmulGflops)
{
    /// <summary>The bandwidth a decode step can at best use: the faster of the two probes (it only reads weights).</summary>
    public double BandwidthGBps => Math.Max(TriadGBps, ReadGBps);

    /// <summary>
    /// The matmul rate that bounds products in <paramref name="dtype"/>: its own, or float32's where that is faster (a
    /// CPU without AVX512_BF16 runs libtorch's bf16 GEMM at ~1 GFLOP/s, so bf16 products there multiply in float32).
    /// Float32 must have been measured too.
    /// </summary>
    public double MatmulGflopsFor(ScalarType dtype) => Math.Max(MatmulGflops[dtype], MatmulGflops[ScalarType.Float32]);

    public static MachineBounds Measure(IEnumerable<ScalarType> dtypes, int repeats = 5) => Measure(new BandwidthProbe(), dtypes, repeats);

    public static MachineBounds Measure(BandwidthProbe probe, IEnumerable<ScalarType> dtypes, int repeats = 5) =>
        new(probe.TriadGBps(repeats), probe.ReadGBps(repeats), dtypes.Distinct().ToDictionary(d => d, d => MeasureMatmul(d, repeats)));

    /// <summary>Best of <paramref name="repeats"/> timed runs after a warm-up, fewer once 5 s are spent (libtorch's bf16 GEMM on a CPU without AVX-512 runs at ~1 GFLOP/s).</summary>
    internal static double Best(int repeats, Action action)
    {
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int r = 0; r <= repeats && (r < 2 || total.Elapsed.TotalSeconds < 5); r++)
        {
            var watch = Stopwatch.StartNew();
            action();
            if (r > 0) best = Math.Min(best, watch.Elapsed.TotalSeconds); // the first run warms up
        }
        return best;
    }

    /// <summary>GFLOP/s of a 2048² matrix product in <paramref name="dtype"/> (libtorch, all threads).</summary>
    private static double MeasureMatmul(ScalarType dtype, int repeats)
    {
        const int n = 2048;
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([n, n]).to(dtype);
        var y = torch.randn([n, n]).to(dtype);
        return 2.0 * n * n * n / Best(repeats, () => torch.mm(x, y).Dispose()) / 1e9;
    }
}
