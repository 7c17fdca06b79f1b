namespace Gpt2Orleans.Cli.Benchmark;

/// <summary>p50 and p99 of a set of samples (nearest rank).</summary>
public sealed record Percentiles(double P50, double P99)
{
    public static Percentiles Of(List<double> values)
    {
        values.Sort();
        return values.Count == 0 ? new(0, 0) : new(values[(int)(0.5 * (values.Count - 1))], values[(int)(0.99 * (values.Count - 1))]);
    }
}
