using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// One sequence's text as it streams: tokens detokenized incrementally (never half a UTF-8 character; special
/// tokens such as eos add no text, as vLLM streams by default) and stop strings cut out.
/// </summary>
internal sealed class SequenceOutput(Gpt2Tokenizer tokenizer, IReadOnlyList<string> stopStrings)
{
    private readonly StreamingDetokenizer _detokenizer = tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);
    private readonly StopStringMatcher _stops = new(stopStrings);

    /// <summary>The text this token makes safe to send, and the stop string it completed; <paramref name="last"/> flushes everything held.</summary>
    public (string Text, string? Stop) Push(int token, bool last)
    {
        string piece = _detokenizer.Push(token);
        if (last) piece += _detokenizer.Flush();
        var (text, stop) = _stops.Push(piece);
        if (stop is null && last) text += _stops.Flush();
        return (text, stop);
    }
}
