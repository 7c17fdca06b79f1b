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

    /// <summary>
    /// GFLOP/s of a square matrix product in <paramref name="dtype"/> (libtorch, all threads): 2048², or smaller where a
    /// 256² product shows the rate so low that a 2048² one would take more than half a second. Why: libtorch's bf16
    /// GEMM on a CPU without AVX512_BF16 runs at well under 1 GFLOP/s; its two 2048² runs took ~100 s of a `gpt2o bench`
    /// of 125 s on a Zen 3 here, to measure a rate that no bound then uses (products there multiply in float32).
    /// </summary>
    private static double MeasureMatmul(ScalarType dtype, int repeats)
    {
        const int largest = 2048, smallest = 256;
        const double secondsPerProduct = 0.5;
        double smallRate = Rate(dtype, smallest, repeats: 1);
        int n = Math.Clamp((int)(Math.Cbrt(smallRate * 1e9 * secondsPerProduct / 2) / 64) * 64, smallest, largest);
        return n == smallest ? smallRate : Rate(dtype, n, repeats);
    }

    private static double Rate(ScalarType dtype, int n, int repeats)
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([n, n]).to(dtype);
        var y = torch.randn([n, n]).to(dtype);
        return 2.0 * n * n * n / Best(repeats, () => torch.mm(x, y).Dispose()) / 1e9;
    }
}
