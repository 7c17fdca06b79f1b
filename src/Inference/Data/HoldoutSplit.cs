namespace Gpt2Orleans.Inference.Data;

/// <summary>A seeded random hold-out: the same seed and records always give the same split, each side in its original order.</summary>
public static class HoldoutSplit
{
    public static (List<T> Train, List<T> Validation) Split<T>(IReadOnlyList<T> records, double fraction, long seed)
    {
        if (!(fraction > 0 && fraction < 1)) throw new ArgumentException($"validation_split must be between 0 and 1 (exclusive), got {fraction}", "validation_split");
        var order = Enumerable.Range(0, records.Count).ToArray();
        new Random(unchecked((int)seed)).Shuffle(order);
        int held = (int)Math.Round(records.Count * fraction);
        if (held < 1 || held >= records.Count)
            throw new ArgumentException($"a validation split of {fraction} of {records.Count} documents leaves {(held < 1 ? "no validation" : "no training")} documents: give a validation file", "validation_split");
        var validation = order.Take(held).Order().Select(i => records[i]).ToList();
        var train = order.Skip(held).Order().Select(i => records[i]).ToList();
        return (train, validation);
    }
}
