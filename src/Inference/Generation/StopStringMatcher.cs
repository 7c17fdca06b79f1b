using System.Text;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// Cuts stop strings (HF's <c>stop_strings</c>, OpenAI's <c>stop</c>) out of one sequence's text as it streams: text
/// arrives in pieces, so a stop string may straddle tokens. The end of the text that could still be the start of a
/// stop string is held back until the next piece shows it is not (as vLLM does); once a stop string appears, the
/// text before it is released and everything from it on is dropped. Never splits a surrogate pair.
/// </summary>
public sealed class StopStringMatcher(IReadOnlyList<string> stopStrings)
{
    private readonly StringBuilder _pending = new();

    /// <summary>Adds generated text; returns the text now safe to send, and the stop string that ended it, if one did.</summary>
    public (string Text, string? Stop) Push(string piece)
    {
        if (stopStrings.Count == 0) return (piece, null);
        _pending.Append(piece);
        string text = _pending.ToString();
        _pending.Clear();
        int first = -1;
        string? stop = null;
        foreach (var s in stopStrings)
        {
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first)) (first, stop) = (at, s);
        }
        if (stop is not null) return (text[..first], stop);
        int hold = stopStrings.Max(s => HeldBack(text, s));
        if (hold < text.Length && hold > 0 && char.IsHighSurrogate(text[^(hold + 1)])) hold++;
        _pending.Append(text, text.Length - hold, hold);
        return (text[..^hold], null);
    }

    /// <summary>Whatever was held back, at the end of the sequence (no stop string completed).</summary>
    public string Flush()
    {
        string text = _pending.ToString();
        _pending.Clear();
        return text;
    }

    /// <summary>The longest end of <paramref name="text"/> that is a proper start of <paramref name="stop"/>.</summary>
    private static int HeldBack(string text, string stop)
    {
        for (int length = Math.Min(stop.Length - 1, text.Length); length > 0; length--)
            if (text.AsSpan(text.Length - length).SequenceEqual(stop.AsSpan(0, length))) return length;
        return 0;
    }
}
