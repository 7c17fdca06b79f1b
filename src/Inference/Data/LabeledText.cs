using System.Text.Json;

namespace Gpt2Orleans.Inference.Data;

/// <summary>
/// One sequence-classification example, <c>{"text": …, "label": …}</c>: the label is a name (resolved against the
/// label set) or an index; it is kept as written here and resolved by <see cref="LabelSet"/>.
/// </summary>
public sealed record LabeledText(string Text, string Label)
{
    public static List<LabeledText> Read(string path) => DataFile.ReadJsonLines(path, record =>
    {
        const string shape = "a string \"text\" and a \"label\" (a name or an index)";
        string text = DataFile.String(record, "text", shape);
        if (!record.TryGetProperty("label", out var label)) throw new FormatException($"is not an object with {shape}");
        return new LabeledText(text, LabelSet.Token(label) ?? throw new FormatException($"has a \"label\" that is neither a name nor an index: {label.GetRawText()}"));
    });
}
