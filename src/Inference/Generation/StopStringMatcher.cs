namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// Watches one sequence's generated text for stop strings (HF's <c>stop_strings</c>). Text arrives in pieces, so
/// a stop string may straddle tokens; only the tail that could complete one is searched each time.
/// </summary>
public sealed class StopStringMatcher(IReadOnlyList<string> stopStrings)
{
    private readonly System.Text.StringBuilder _text = new();
    private readonly int _longest = stopStrings.Count == 0 ? 0 : stopStrings.Max(s => s.Length);

    /// <summary>Adds generated text; true when a stop string now appears.</summary>
    public bool Append(string piece)
    {
        if (_longest == 0 || piece.Length == 0) return false;
        int searchFrom = Math.Max(0, _text.Length - _longest + 1);
        _text.Append(piece);
        string tail = _text.ToString(searchFrom, _text.Length - searchFrom);
        return stopStrings.Any(s => tail.Contains(s, StringComparison.Ordinal));
    }
}
