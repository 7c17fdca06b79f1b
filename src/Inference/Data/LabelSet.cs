using System.Globalization;
using System.Text.Json;
using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Inference.Data;

/// <summary>
/// A classification task's labels, index → name (a config's <c>id2label</c>). A label in a data file is a name from
/// the set or an index into it; anything else is an error naming the label and the set.
/// </summary>
public sealed class LabelSet
{
    public IReadOnlyList<string> Names { get; }
    private readonly Dictionary<string, int> _ids;

    public LabelSet(IReadOnlyList<string> names)
    {
        if (names.Count == 0) throw new ArgumentException("the label set is empty", "labels");
        Names = names;
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++)
            if (names[i].Length == 0 || !_ids.TryAdd(names[i], i)) throw new ArgumentException($"label '{names[i]}' is empty or given twice", "labels");
    }

    public int Count => Names.Count;

    /// <summary>A config's <c>id2label</c> in index order.</summary>
    public static LabelSet Of(Gpt2Config config) => new(Enumerable.Range(0, config.NumLabels).Select(i => config.Id2Label[i]).ToList());

    public IReadOnlyDictionary<int, string> Id2Label => Enumerable.Range(0, Count).ToDictionary(i => i, i => Names[i]);

    /// <summary>
    /// The set a data file implies when none is given (HF's run_glue: the sorted distinct names); labels that are all
    /// indices give LABEL_0…LABEL_max.
    /// </summary>
    public static LabelSet FromData(IEnumerable<string> labels)
    {
        var distinct = labels.Distinct(StringComparer.Ordinal).ToList();
        if (distinct.All(l => IsIndex(l, out _)))
            return new LabelSet(Enumerable.Range(0, distinct.Max(l => int.Parse(l, CultureInfo.InvariantCulture)) + 1).Select(i => $"LABEL_{i}").ToList());
        return new LabelSet(distinct.Order(StringComparer.Ordinal).ToList());
    }

    public int Id(string label)
    {
        if (_ids.TryGetValue(label, out int id)) return id;
        if (IsIndex(label, out int index))
            return index < Count ? index : throw new ArgumentException($"label {index} is outside num_labels ({Count}: {Describe()})", "labels");
        throw new ArgumentException($"label '{label}' is not one of the {Count} labels ({Describe()})", "labels");
    }

    private string Describe() => string.Join(", ", Names.Take(10)) + (Count > 10 ? ", …" : "");

    private static bool IsIndex(string label, out int index) =>
        int.TryParse(label, NumberStyles.None, CultureInfo.InvariantCulture, out index);

    /// <summary>A JSON label as text: a string as it is, a non-negative integer as its digits; null for anything else.</summary>
    public static string? Token(JsonElement label) => label.ValueKind switch
    {
        JsonValueKind.String when label.GetString()!.Length > 0 => label.GetString(),
        JsonValueKind.Number when label.TryGetInt32(out int i) && i >= 0 => i.ToString(CultureInfo.InvariantCulture),
        _ => null,
    };
}
