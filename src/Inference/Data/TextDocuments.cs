using System.Text;
using System.Text.Json;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Data;

/// <summary>
/// The documents of a text file as training and evaluation read them: JSON Lines (<c>.jsonl</c>) with one
/// <c>{"text": …}</c> per line, or a <c>.txt</c> file as one document. Strict UTF-8; every error names the file (and
/// the line), so a bad file is refused before any work starts.
/// </summary>
public static class TextDocuments
{
    public const long MaxFileBytes = 1L << 30;

    public static IReadOnlyList<string> Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new ArgumentException($"'{path}' does not exist", "file");
        if (info.Length > MaxFileBytes) throw new ArgumentException($"'{path}' is larger than {MaxFileBytes >> 20} MiB", "file");
        bool jsonLines = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);
        if (!jsonLines && !path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"'{path}' is neither JSON Lines (.jsonl, one {{\"text\": …}} per line) nor text (.txt, one document)", "file");
        string text;
        try { text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path)); }
        catch (DecoderFallbackException) { throw new ArgumentException($"'{path}' is not valid UTF-8 text", "file"); }
        text = text.TrimStart('\uFEFF');
        var documents = jsonLines ? Lines(path, text) : [text];
        if (documents.All(d => d.Length == 0)) throw new ArgumentException($"'{path}' holds no text", "file");
        return documents;
    }

    private static List<string> Lines(string path, string text)
    {
        var documents = new List<string>();
        int number = 0;
        foreach (var line in text.Split('\n'))
        {
            number++;
            if (line.Trim().Length == 0) continue; // blank lines (a trailing newline) hold no document
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.ValueKind != JsonValueKind.Object || !json.RootElement.TryGetProperty("text", out var value) || value.ValueKind != JsonValueKind.String)
                    throw new ArgumentException($"'{path}' line {number} is not an object with a string \"text\"", "file");
                documents.Add(value.GetString()!);
            }
            catch (JsonException e) { throw new ArgumentException($"'{path}' line {number} is not JSON: {e.Message}", "file"); }
        }
        return documents;
    }

    /// <summary>The documents' tokens in one stream, <c>&lt;|endoftext|&gt;</c> between documents (as training joins them).</summary>
    public static List<int> Join(IReadOnlyList<string> documents, Gpt2Tokenizer tokenizer)
    {
        var ids = new List<int>();
        foreach (var document in documents.Where(d => d.Length > 0))
        {
            if (ids.Count > 0) ids.Add(tokenizer.EndOfTextId);
            ids.AddRange(tokenizer.Encode(document));
        }
        return ids;
    }
}
