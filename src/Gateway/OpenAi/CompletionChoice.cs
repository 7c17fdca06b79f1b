using System.Text;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// One choice being built from streamed tokens: its text (the engine has cut stop strings out; for chat, leading
/// whitespace is dropped too, since the model writes " Hello" after "Assistant:"), its tokens' log-probabilities in either of OpenAI's shapes
/// (legacy completions or chat), and its finish reason.
/// </summary>
public sealed class CompletionChoice(int index, string prefix, bool trimLeadingWhitespace = false)
{
    private readonly StringBuilder _text = new(prefix);
    private readonly List<(string Token, double? Logprob, IReadOnlyList<TopLogprob> Top, int Offset)> _logprobs = [];
    private int _offset = prefix.Length; // where the next token's text starts in the choice's text
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
            AddLogprob(token.Text, l.Logprob, l.Top);
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

    public void AddLogprob(string tokenText, double? logprob, IReadOnlyList<TopLogprob> top)
    {
        _logprobs.Add((tokenText, logprob, top, _offset));
        _offset += tokenText.Length;
    }

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
                token = l.Token, logprob = l.Logprob ?? 0, bytes = Bytes(l.Token),
                top_logprobs = l.Top.Take(topLogprobs).Select(t => new { token = t.Text, logprob = t.Logprob, bytes = Bytes(t.Text) }),
            }),
        }
        : null;

    /// <summary>How many tokens have log-probabilities so far (a stream sends those after this mark).</summary>
    public int LogprobCount => _logprobs.Count;

    /// <summary>OpenAI gives a token's UTF-8 bytes as a list of integers (so clients can join tokens that split a character).</summary>
    private static IEnumerable<int> Bytes(string text) => Encoding.UTF8.GetBytes(text).Select(b => (int)b);

    private static Dictionary<string, double> Alternatives(IReadOnlyList<TopLogprob> top)
    {
        var alternatives = new Dictionary<string, double>();
        foreach (var t in top) alternatives.TryAdd(t.Text, t.Logprob);
        return alternatives;
    }
}
