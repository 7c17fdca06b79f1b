using System.Text;
using System.Text.Json;

namespace Gpt2Orleans.Inference.Data;

/// <summary>
/// A training or evaluation file read strictly: it must exist, fit in <see cref="MaxFileBytes"/>, be UTF-8 (a BOM is
/// dropped) and, for JSON Lines, hold one JSON object per non-blank line. Every error names the file (and the line).
/// </summary>
public static class DataFile
{
    public const long MaxFileBytes = 1L << 30;

    public static bool IsJsonLines(string path) => path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);

    public static string ReadText(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new ArgumentException($"'{path}' does not exist", "file");
        if (info.Length > MaxFileBytes) throw new ArgumentException($"'{path}' is larger than {MaxFileBytes >> 20} MiB", "file");
        try { return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path)).TrimStart('\uFEFF'); }
        catch (DecoderFallbackException) { throw new ArgumentException($"'{path}' is not valid UTF-8 text", "file"); }
    }

    /// <summary>Each non-blank line's object, read by <paramref name="read"/> (which throws <see cref="FormatException"/> naming what is wrong).</summary>
    public static List<T> ReadJsonLines<T>(string path, Func<JsonElement, T> read)
    {
        if (!IsJsonLines(path)) throw new ArgumentException($"'{path}' is not JSON Lines (.jsonl, one object per line)", "file");
        var records = new List<T>();
        int number = 0;
        foreach (var line in ReadText(path).Split('\n'))
        {
            number++;
            if (line.Trim().Length == 0) continue; // blank lines (a trailing newline) hold nothing
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.ValueKind != JsonValueKind.Object) throw new FormatException("is not a JSON object");
                records.Add(read(json.RootElement));
            }
            catch (JsonException e) { throw new ArgumentException($"'{path}' line {number} is not JSON: {e.Message}", "file"); }
            catch (FormatException e) { throw new ArgumentException($"'{path}' line {number} {e.Message}", "file"); }
        }
        if (records.Count == 0) throw new ArgumentException($"'{path}' holds no text", "file");
        return records;
    }

    /// <summary>The string property <paramref name="name"/>, or a <see cref="FormatException"/> naming it.</summary>
    public static string String(JsonElement record, string name, string shape) =>
        record.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()! : throw new FormatException($"is not an object with {shape}");
}
