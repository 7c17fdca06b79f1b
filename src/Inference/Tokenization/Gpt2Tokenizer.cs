using System.Text;
using System.Text.RegularExpressions;
using Gpt2Orleans.Inference.Checkpoints;
using Microsoft.ML.Tokenizers;

namespace Gpt2Orleans.Inference.Tokenization;

/// <summary>
/// GPT-2's byte-level BPE on Microsoft.ML.Tokenizers: the text is split on <c>&lt;|endoftext|&gt;</c> (id 50256),
/// pre-tokenized with GPT-2's regex, and BPE-encoded; no BOS/EOS is added (as HF's GPT2Tokenizer).
/// </summary>
public sealed class Gpt2Tokenizer
{
    public const string EndOfTextToken = "<|endoftext|>";

    /// <summary>GPT-2's pre-tokenizer (Python <c>regex</c> syntax that .NET reads the same way; contractions are case-sensitive).</summary>
    public const string SplitPattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer _bpe;
    private readonly string[] _tokens;        // id → token string
    private readonly byte[]?[] _bytes;        // id → raw bytes (computed lazily)
    private readonly Dictionary<int, string> _special;
    private readonly IReadOnlyList<string> _merges; // kept to write the vocabulary back out

    public int VocabSize => _tokens.Length;
    public int EndOfTextId { get; }

    private Gpt2Tokenizer(Stream vocab, Stream merges, string source)
    {
        Dictionary<string, int> vocabulary;
        try { vocabulary = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, int>>(vocab) ?? throw new FormatException("empty"); }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException)
        {
            throw new CheckpointException($"{source}: vocab.json is not an object of token → id: {e.Message}", e);
        }
        if (!vocabulary.TryGetValue(EndOfTextToken, out var eot))
            throw new CheckpointException($"{source}: vocab.json has no {EndOfTextToken} token");
        int size = vocabulary.Values.Max() + 1;
        if (vocabulary.Values.Any(id => id < 0) || size != vocabulary.Count)
            throw new CheckpointException($"{source}: vocab.json ids must be exactly 0..{vocabulary.Count - 1}");
        _tokens = new string[size];
        foreach (var (token, id) in vocabulary) _tokens[id] = token;
        _bytes = new byte[]?[size];
        EndOfTextId = eot;
        _special = new Dictionary<int, string> { [eot] = EndOfTextToken };

        var specialTokens = new Dictionary<string, int> { [EndOfTextToken] = eot };
        _merges = ReadMerges(merges, source);
        var options = new BpeOptions(vocabulary)
        {
            Merges = _merges,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new Regex(SplitPattern, RegexOptions.Compiled), specialTokens),
            SpecialTokens = specialTokens,
        };
        _bpe = BpeTokenizer.Create(options);
    }

    private static List<string> ReadMerges(Stream merges, string source)
    {
        using var reader = new StreamReader(merges, Encoding.UTF8);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            if (line.Split(' ').Length != 2) throw new CheckpointException($"{source}: merges.txt line '{line}' is not a pair");
            lines.Add(line);
        }
        return lines;
    }

    /// <summary>OpenAI's GPT-2 vocabulary, bundled with the library.</summary>
    public static Gpt2Tokenizer Default => DefaultInstance.Value;

    private static readonly Lazy<Gpt2Tokenizer> DefaultInstance = new(() =>
    {
        var assembly = typeof(Gpt2Tokenizer).Assembly;
        using var vocab = assembly.GetManifestResourceStream("gpt2.vocab.json")!;
        using var merges = assembly.GetManifestResourceStream("gpt2.merges.txt")!;
        return new Gpt2Tokenizer(vocab, merges, "bundled GPT-2 vocabulary");
    });

    public static Gpt2Tokenizer FromFiles(string vocabPath, string mergesPath)
    {
        try
        {
            using var vocab = File.OpenRead(vocabPath);
            using var merges = File.OpenRead(mergesPath);
            return new Gpt2Tokenizer(vocab, merges, Path.GetDirectoryName(vocabPath) ?? vocabPath);
        }
        catch (IOException e) { throw new CheckpointException($"cannot read tokenizer files: {e.Message}", e); }
    }

    /// <summary>The folder's vocab.json + merges.txt; where both are absent, the bundled GPT-2 vocabulary.</summary>
    public static Gpt2Tokenizer FromDirectory(string directory)
    {
        string vocab = Path.Combine(directory, "vocab.json"), merges = Path.Combine(directory, "merges.txt");
        if (File.Exists(vocab) && File.Exists(merges)) return FromFiles(vocab, merges);
        if (File.Exists(vocab) || File.Exists(merges))
            throw new CheckpointException($"{directory}: has only one of vocab.json and merges.txt");
        return Default;
    }

    public IReadOnlyList<int> Encode(string text) => _bpe.EncodeToIds(text);

    /// <summary>Writes vocab.json and merges.txt as HF's <c>GPT2Tokenizer.save_pretrained</c> does, so the folder carries its vocabulary.</summary>
    public void SavePretrained(string directory)
    {
        Directory.CreateDirectory(directory);
        var vocabulary = new SortedDictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < _tokens.Length; id++) vocabulary[_tokens[id]] = id;
        var options = new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(Path.Combine(directory, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(vocabulary, options), new UTF8Encoding(false));
        File.WriteAllText(Path.Combine(directory, "merges.txt"), "#version: 0.2\n" + string.Join("\n", _merges) + "\n", new UTF8Encoding(false));
    }

    public BatchEncoding EncodeBatch(IReadOnlyList<string> texts, int padTokenId, PaddingSide side) =>
        BatchEncoding.Pad(texts.Select(Encode).ToList(), padTokenId, side);

    public string IdToToken(int id) => id >= 0 && id < _tokens.Length ? _tokens[id]
        : throw new ArgumentOutOfRangeException(nameof(id), $"token id {id} is outside the vocabulary (0..{_tokens.Length - 1})");

    public bool IsSpecial(int id) => _special.ContainsKey(id);

    /// <summary>The raw UTF-8 bytes of one token (special tokens: their text).</summary>
    public byte[] TokenBytes(int id)
    {
        string token = IdToToken(id); // validates the id
        return _bytes[id] ??= _special.TryGetValue(id, out var text) ? Encoding.UTF8.GetBytes(text) : ByteLevelAlphabet.ToBytes(token);
    }

    /// <summary>HF's <c>decode</c>: bytes of all tokens, then UTF-8 with U+FFFD for invalid sequences.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false, bool cleanUpTokenizationSpaces = false)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && IsSpecial(id)) continue;
            bytes.AddRange(TokenBytes(id));
        }
        string text = Encoding.UTF8.GetString(bytes.ToArray());
        return cleanUpTokenizationSpaces ? CleanUpTokenizationSpaces(text) : text;
    }

    /// <summary>HF's <c>clean_up_tokenization</c>.</summary>
    public static string CleanUpTokenizationSpaces(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    public StreamingDetokenizer CreateStreamingDetokenizer(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);
}
