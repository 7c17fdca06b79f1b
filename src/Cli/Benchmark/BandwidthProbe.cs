using System.Runtime.Intrinsics;

namespace Gpt2Orleans.Cli.Benchmark;

/// <summary>
/// Memory bandwidth now: STREAM triad and a read-only sum over three 128 MB arrays on every core, best of a few
/// passes. The arrays are kept between calls, so a measurement can be bracketed by probes taken just before and after
/// it (<see cref="BracketedDecode"/>): this machine's bandwidth moves by a quarter or more between minutes, and a
/// probe taken once at the start judges a later run against a peak that run may never see.
/// </summary>
public sealed class BandwidthProbe
{
    private const int N = 32 * 1024 * 1024; // 3 × 128 MB: far beyond the caches
    private readonly float[] _a = new float[N], _b = new float[N], _c = new float[N];

    public BandwidthProbe()
    {
        Array.Fill(_a, 0.5f); Array.Fill(_b, 1f); Array.Fill(_c, 2f);
    }

    /// <summary>STREAM triad a = b + s·c, bytes counted as STREAM does (three arrays × 4 bytes), best of <paramref name="repeats"/>.</summary>
    public double TriadGBps(int repeats) => 3.0 * 4 * N / MachineBounds.Best(repeats, () => Split((lo, hi) => Triad(_a, _b, _c, lo, hi))) / 1e9;

    /// <summary>A read of the three arrays, best of <paramref name="repeats"/>.</summary>
    public double ReadGBps(int repeats) => 3.0 * 4 * N / MachineBounds.Best(repeats, () => Split((lo, hi) => { Sum(_a, lo, hi); Sum(_b, lo, hi); Sum(_c, lo, hi); })) / 1e9;

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

    /// <summary>Runs <paramref name="work"/> on every core over an equal share of the arrays (multiples of 32).</summary>
    private static void Split(Action<int, int> work)
    {
        int workers = Environment.ProcessorCount;
        Parallel.For(0, workers, w => work((int)((long)N * w / workers) / 32 * 32, (int)((long)N * (w + 1) / workers) / 32 * 32));
    }
}
