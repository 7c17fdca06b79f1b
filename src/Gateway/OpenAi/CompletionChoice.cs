using System.Text;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// One choice being built from streamed tokens: its text (the engine has cut stop strings out; for chat, leading
/// whitespace is dropped too, since the model writes " Hello" after "Assistant:"), its tokens' log-probabilities in either of OpenAI's shapes
/// (legacy completions or chat), and its finish reason. A token is named by its own UTF-8 bytes (OpenAI's
/// <c>bytes</c>; as text when they are whole characters, else <c>bytes:\xNN…</c>), since one token may hold part of a
/// character; its <c>text_offset</c> counts the whole characters of the tokens before it (an echoed prompt's first).
/// </summary>
public sealed class CompletionChoice(int index, string prefix, bool trimLeadingWhitespace = false)
{
    private readonly StringBuilder _text = new(prefix);
    private readonly List<(string Token, byte[] Bytes, double? Logprob, IReadOnlyList<TopLogprob> Top, int Offset)> _logprobs = [];
    private readonly Decoder _characters = Encoding.UTF8.GetDecoder(); // the tokens' bytes so far, as whole characters
    private int _offset; // characters of the tokens with log-probabilities so far: where the next one starts
    private bool _leading = trimLeadingWhitespace;
    public int Index { get; set; } = index;
    public string? FinishReason { get; private set; }
    public string Text => _text.ToString();
    /// <summary>The sum of the generated tokens' log-probabilities (what best_of ranks by).</summary>
    public double CumulativeLogprob { get; private set; }

    /// <summary>Adds one token; returns the text that became safe to send.</summary>
    public string Add(GeneratedToken token)
    {
        if (token.Logprobs is { } l)
        {
            AddLogprob(l.Bytes ?? Encoding.UTF8.GetBytes(token.Text), l.Logprob, l.Top);
            CumulativeLogprob += l.Logprob;
        }
        string delta = token.Text;
        if (token.FinishReason is { } finish) FinishReason = finish;
        if (_leading)
        {
            delta = delta.TrimStart();
            _leading = delta.Length == 0;
        }
        _text.Append(delta);
        return delta;
    }

    public void Finish(string reason) => FinishReason = reason;

    public void AddLogprob(byte[] tokenBytes, double? logprob, IReadOnlyList<TopLogprob> top)
    {
        _logprobs.Add((TokenString(tokenBytes), tokenBytes, logprob, top, _offset));
        _offset += _characters.GetChars(tokenBytes, 0, tokenBytes.Length, new char[tokenBytes.Length + 4], 0, flush: false);
    }

    /// <summary>A token as OpenAI names it: its text when its bytes are whole characters, else <c>bytes:\xNN…</c>.</summary>
    private static string TokenString(byte[] bytes) =>
        System.Text.Unicode.Utf8.IsValid(bytes) ? Encoding.UTF8.GetString(bytes) : "bytes:" + string.Concat(bytes.Select(b => $"\\x{b:x2}"));

    private static byte[] BytesOf(TopLogprob t) => t.Bytes ?? Encoding.UTF8.GetBytes(t.Text);

    /// <summary>The legacy completions shape: tokens, token_logprobs, top_logprobs (text → logprob), text_offset.</summary>
    public object? LegacyLogprobs(bool asked, int from = 0) => asked
        ? new
        {
            tokens = _logprobs.Skip(from).Select(l => l.Token),
            token_logprobs = _logprobs.Skip(from).Select(l => l.Logprob),
            top_logprobs = _logprobs.Skip(from).Select(l => l.Logprob is null ? null : Alternatives(l.Top)),
            text_offset = _logprobs.Skip(from).Select(l => l.Offset),
        }
        : null;

    /// <summary>The chat shape: content = [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}].</summary>
    public object? ChatLogprobs(bool asked, int topLogprobs, int from = 0) => asked
        ? new
        {
            content = _logprobs.Skip(from).Select(l => new
            {
                token = l.Token, logprob = l.Logprob ?? 0, bytes = Bytes(l.Bytes),
                top_logprobs = l.Top.Take(topLogprobs).Select(t => new { token = TokenString(BytesOf(t)), logprob = t.Logprob, bytes = Bytes(BytesOf(t)) }),
            }),
        }
        : null;

    /// <summary>How many tokens have log-probabilities so far (a stream sends those after this mark).</summary>
    public int LogprobCount => _logprobs.Count;

    /// <summary>OpenAI gives a token's UTF-8 bytes as a list of integers (so clients can join tokens that split a character).</summary>
    private static IEnumerable<int> Bytes(byte[] bytes) => bytes.Select(b => (int)b);

    private static Dictionary<string, double> Alternatives(IReadOnlyList<TopLogprob> top)
    {
        var alternatives = new Dictionary<string, double>();
        foreach (var t in top) alternatives.TryAdd(TokenString(BytesOf(t)), t.Logprob);
        return alternatives;
    }
}
