using System.Diagnostics;
using System.Runtime.Intrinsics;
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

    public static MachineBounds Measure(IEnumerable<ScalarType> dtypes, int repeats = 5)
    {
        const int n = 32 * 1024 * 1024; // 3 × 128 MB: far beyond the caches
        var a = new float[n]; var b = new float[n]; var c = new float[n];
        Array.Fill(a, 0.5f); Array.Fill(b, 1f); Array.Fill(c, 2f);
        double triad = 3.0 * 4 * n / Best(repeats, () => Split(n, (lo, hi) => Triad(a, b, c, lo, hi))) / 1e9;
        double read = 3.0 * 4 * n / Best(repeats, () => Split(n, (lo, hi) => { Sum(a, lo, hi); Sum(b, lo, hi); Sum(c, lo, hi); })) / 1e9;
        return new MachineBounds(triad, read, dtypes.Distinct().ToDictionary(d => d, d => MeasureMatmul(d, repeats)));
    }

    /// <summary>STREAM triad a = b + s·c, bytes counted as STREAM does (three arrays × 4 bytes).</summary>
    private static void Triad(float[] a, float[] b, float[] c, int lo, int hi)
    {
        var s = Vector256.Create(3f);
        for (int i = lo; i < hi; i += 8)
            (Vector256.Create(b.AsSpan(i, 8)) + s * Vector256.Create(c.AsSpan(i, 8))).CopyTo(a.AsSpan(i, 8));
    }

    private static float Sum(float[] x, int lo, int hi)
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default; // four chains: loads, not adds, set the pace
        for (int i = lo; i < hi; i += 32)
        {
            s0 += Vector256.Create(x.AsSpan(i, 8));
            s1 += Vector256.Create(x.AsSpan(i + 8, 8));
            s2 += Vector256.Create(x.AsSpan(i + 16, 8));
            s3 += Vector256.Create(x.AsSpan(i + 24, 8));
        }
        return Vector256.Sum(s0 + s1 + s2 + s3);
    }

    /// <summary>Runs <paramref name="work"/> on every core over an equal share of [0, n) (multiples of 32).</summary>
    private static void Split(int n, Action<int, int> work)
    {
        int workers = Environment.ProcessorCount;
        Parallel.For(0, workers, w => work((int)((long)n * w / workers) / 32 * 32, (int)((long)n * (w + 1) / workers) / 32 * 32));
    }

    /// <summary>Best of <paramref name="repeats"/> timed runs after a warm-up, fewer once 5 s are spent (libtorch's bf16 GEMM on a CPU without AVX-512 runs at ~1 GFLOP/s).</summary>
    private static double Best(int repeats, Action action)
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
