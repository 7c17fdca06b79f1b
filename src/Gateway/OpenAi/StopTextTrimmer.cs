namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// OpenAI leaves the stop sequence out of the text. While streaming, the end of the text that could still be the
/// start of a stop string is held back until the next delta shows it is not (as vLLM does); at the end the text is
/// cut where the first stop string begins. Never splits a surrogate pair.
/// </summary>
public sealed class StopTextTrimmer(IReadOnlyList<string> stops)
{
    private readonly System.Text.StringBuilder _pending = new();
    private readonly int _holdBack = stops.Count == 0 ? 0 : stops.Max(s => s.Length) - 1;
    private bool _stopped;

    /// <summary>The text that is now safe to send.</summary>
    public string Push(string delta)
    {
        if (_stopped) return "";
        _pending.Append(delta);
        string text = _pending.ToString();
        int stop = FirstStop(text);
        if (stop >= 0)
        {
            _stopped = true;
            _pending.Clear();
            return text[..stop];
        }
        int safe = Math.Max(0, text.Length - _holdBack);
        if (safe > 0 && safe < text.Length && char.IsHighSurrogate(text[safe - 1])) safe--;
        _pending.Remove(0, safe);
        return text[..safe];
    }

    /// <summary>Whatever is held back, at the end (cut at a stop string if one completed).</summary>
    public string Flush()
    {
        if (_stopped) return "";
        string text = _pending.ToString();
        _pending.Clear();
        int stop = FirstStop(text);
        return stop >= 0 ? text[..stop] : text;
    }

    private int FirstStop(string text) =>
        stops.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
}
