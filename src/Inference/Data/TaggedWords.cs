using System.Text.Json;

namespace Gpt2Orleans.Inference.Data;

/// <summary>
/// One token-classification example, <c>{"tokens": ["EU", "rejects", …], "labels": ["B-ORG", "O", …]}</c>: words
/// (as HF's token-classification datasets hold them) and one label (a name or an index) per word.
/// </summary>
public sealed record TaggedWords(IReadOnlyList<string> Words, IReadOnlyList<string> Labels)
{
    public static List<TaggedWords> Read(string path) => DataFile.ReadJsonLines(path, record =>
    {
        const string shape = "a \"tokens\" array of strings and a \"labels\" array of the same length";
        if (!record.TryGetProperty("tokens", out var tokens) || tokens.ValueKind != JsonValueKind.Array
            || !record.TryGetProperty("labels", out var labels) || labels.ValueKind != JsonValueKind.Array
            || tokens.GetArrayLength() != labels.GetArrayLength() || tokens.GetArrayLength() == 0)
            throw new FormatException($"is not an object with {shape}");
        var words = tokens.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.String ? t.GetString()! : throw new FormatException($"has a token that is not a string: {t.GetRawText()}")).ToList();
        var names = labels.EnumerateArray().Select(l => LabelSet.Token(l) ?? throw new FormatException($"has a label that is neither a name nor an index: {l.GetRawText()}")).ToList();
        return new TaggedWords(words, names);
    });
}
