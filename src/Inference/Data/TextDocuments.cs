using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Data;

/// <summary>
/// The documents of a text file as language-model training and evaluation read them: JSON Lines (<c>.jsonl</c>) with
/// one <c>{"text": …}</c> per line, or a <c>.txt</c> file as one document (read as <see cref="DataFile"/> reads).
/// </summary>
public static class TextDocuments
{
    public static IReadOnlyList<string> Read(string path)
    {
        if (!DataFile.IsJsonLines(path) && !path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"'{path}' is neither JSON Lines (.jsonl, one {{\"text\": …}} per line) nor text (.txt, one document)", "file");
        var documents = DataFile.IsJsonLines(path)
            ? DataFile.ReadJsonLines(path, record => DataFile.String(record, "text", "a string \"text\""))
            : [DataFile.ReadText(path)];
        if (documents.All(d => d.Length == 0)) throw new ArgumentException($"'{path}' holds no text", "file");
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
