using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// One choice being built from streamed tokens: its text (stop strings cut out), the legacy completions logprobs
/// (tokens, token_logprobs, top_logprobs, text_offset) and its finish reason.
/// </summary>
public sealed class CompletionChoice(int index, IReadOnlyList<string> stops, string prefix)
{
    private readonly StopTextTrimmer _trimmer = new(stops);
    private readonly System.Text.StringBuilder _text = new(prefix);
    private int _offset = prefix.Length; // where the next token's text starts in the choice's text
    public int Index { get; } = index;
    public List<string> Tokens { get; } = [];
    public List<double?> TokenLogprobs { get; } = [];
    public List<Dictionary<string, double>?> TopLogprobs { get; } = [];
    public List<int> TextOffsets { get; } = [];
    public string? FinishReason { get; private set; }
    public int CompletionTokens { get; private set; }
    public string Text => _text.ToString();

    /// <summary>Adds one token; returns the text that became safe to send.</summary>
    public string Add(GeneratedToken token)
    {
        CompletionTokens++;
        if (token.Logprobs is { } l) AddLogprob(token.Text, l.Logprob, l.Top);
        string delta = _trimmer.Push(token.Text);
        if (token.FinishReason is { } finish)
        {
            delta += _trimmer.Flush();
            FinishReason = finish;
        }
        _text.Append(delta);
        return delta;
    }

    public void Finish(string reason) => FinishReason = reason;

    public void AddLogprob(string tokenText, double? logprob, IReadOnlyList<TopLogprob> top)
    {
        TextOffsets.Add(_offset);
        _offset += tokenText.Length;
        Tokens.Add(tokenText);
        TokenLogprobs.Add(logprob);
        var alternatives = new Dictionary<string, double>();
        foreach (var t in top) alternatives.TryAdd(t.Text, t.Logprob);
        TopLogprobs.Add(logprob is null ? null : alternatives);
    }

    public object? LogprobsObject(bool asked) => asked
        ? new { tokens = Tokens, token_logprobs = TokenLogprobs, top_logprobs = TopLogprobs, text_offset = TextOffsets }
        : null;
}
