using System.Text.RegularExpressions;

namespace Gpt2Orleans.Inference.Data;

/// <summary>One quotation of a fortune file and the file (topic) it comes from.</summary>
public sealed record Fortune(string File, string Text);

/// <summary>
/// Debian's <c>fortunes</c> corpus (<c>/usr/share/games/fortunes</c>): one file per topic, quotations separated by
/// lines holding only <c>%</c>. Overstriking (<c>_\bI</c>, typewriter underlining) is reduced to the struck letter,
/// other control characters but tab and newline are dropped; the index files (<c>.dat</c>) and links (<c>.u8</c>) are skipped.
/// </summary>
public static partial class FortuneFiles
{
    public const string DefaultDirectory = "/usr/share/games/fortunes";

    [GeneratedRegex(@"[^\x08]\x08")]
    private static partial Regex Overstrike();

    [GeneratedRegex(@"[\x00-\x08\x0B-\x1F\x7F]")]
    private static partial Regex Control();

    /// <summary>The topic files of <paramref name="directory"/>, by name.</summary>
    public static IReadOnlyList<string> Topics(string directory)
    {
        if (!Directory.Exists(directory))
            throw new ArgumentException($"'{directory}' does not exist: install Debian's fortunes package (apt-get install fortunes)", "fortunes-dir");
        return Directory.GetFiles(directory).Where(f => Path.GetExtension(f) is "" && new FileInfo(f).LinkTarget is null)
            .Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList()!;
    }

    /// <summary>Refuses <paramref name="topics"/> that are not files of <paramref name="directory"/>, naming them and the ones there are.</summary>
    public static void RequireTopics(string directory, IEnumerable<string> topics)
    {
        var available = Topics(directory);
        var missing = topics.Where(t => !available.Contains(t)).ToList();
        if (missing.Count > 0) throw new ArgumentException($"no fortune file {string.Join(", ", missing)} in '{directory}' (there are: {string.Join(", ", available)})", "labels");
    }

    public static IReadOnlyList<Fortune> Read(string directory, IEnumerable<string>? topics = null)
    {
        var chosen = topics?.ToList() ?? Topics(directory).ToList();
        RequireTopics(directory, chosen);
        var fortunes = new List<Fortune>();
        foreach (var topic in chosen)
            foreach (var text in Split(DataFile.ReadText(Path.Combine(directory, topic))))
                fortunes.Add(new Fortune(topic, text));
        return fortunes;
    }

    /// <summary>The quotations of one file's text, cleaned, blank ones dropped.</summary>
    public static IEnumerable<string> Split(string text)
    {
        foreach (var part in Regex.Split(text.Replace("\r\n", "\n"), @"^%[ \t]*$\n?", RegexOptions.Multiline))
        {
            string cleaned = part;
            while (Overstrike().IsMatch(cleaned)) cleaned = Overstrike().Replace(cleaned, "");
            cleaned = Control().Replace(cleaned, "").Trim('\n', ' ', '\t');
            if (cleaned.Length > 0) yield return cleaned;
        }
    }
}
