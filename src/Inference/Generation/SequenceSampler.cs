namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// Draws a token from a probability row with a generator of its own, so a seeded sequence gives the same tokens
/// whatever else is in the batch and on any device (sampling happens on the host from the final probabilities).
/// </summary>
public sealed class SequenceSampler(long seed)
{
    private readonly Random _random = new(unchecked((int)(seed ^ (seed >> 32))));

    /// <summary>Seeds for the rows of one request: row i of a seeded request always gets the same generator.</summary>
    public static long SeedFor(long? requestSeed, int row) =>
        requestSeed is { } seed ? unchecked(seed * 1_000_003 + row) : Random.Shared.NextInt64();

    public int Sample(ReadOnlySpan<float> probabilities)
    {
        double total = 0;
        foreach (var p in probabilities) total += p;
        if (!(total > 0)) throw new InvalidOperationException("every token was filtered out; nothing to sample");
        double target = _random.NextDouble() * total, cumulative = 0;
        int last = -1;
        for (int i = 0; i < probabilities.Length; i++)
        {
            if (probabilities[i] <= 0) continue;
            cumulative += probabilities[i];
            last = i;
            if (cumulative > target) return i;
        }
        return last; // rounding: the target fell past the last positive entry
    }

    /// <summary><paramref name="count"/> distinct indices drawn in turn without replacement (torch.multinomial's
    /// replacement=False), as beam sampling draws its candidates.</summary>
    public int[] SampleDistinct(ReadOnlySpan<float> probabilities, int count)
    {
        var remaining = probabilities.ToArray();
        var chosen = new int[count];
        for (int k = 0; k < count; k++)
        {
            chosen[k] = Sample(remaining);
            remaining[chosen[k]] = 0;
        }
        return chosen;
    }
}
