using System.Text;
using Gpt2Orleans.Inference.Classification;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.QuestionAnswering;

/// <summary>An answer: its text, its character offsets in the context (end exclusive) and its score.</summary>
public sealed record AnswerSpan(string Answer, int Start, int End, double Score);

/// <summary>
/// Hugging Face's question-answering pipeline on a GPT-2 QA head: the input is the question's tokens followed by
/// the context's (GPT-2's tokenizer joins a pair with nothing between); start and end logits are softmaxed over the
/// context's tokens only (the pipeline's p_mask), and the best span maximises p(start)·p(end) with start ≤ end and
/// at most <c>maxAnswerLength</c> tokens. Offsets are characters of the context, without a token's leading space
/// (as HF's fast tokenizer trims them).
/// </summary>
public static class AnswerSpans
{
    public const int DefaultMaxAnswerLength = 15;

    /// <summary>The question's tokens, then the context's; and where the context's begin.</summary>
    public static (IReadOnlyList<int> Ids, int ContextStart) Encode(Gpt2Tokenizer tokenizer, string question, string context)
    {
        var q = tokenizer.Encode(question);
        return ([.. q, .. tokenizer.Encode(context)], q.Count);
    }

    /// <summary>The best span over the context's token positions, given the whole input's start and end logits.</summary>
    public static (int StartToken, int EndToken, double Score) Best(IReadOnlyList<float> startLogits, IReadOnlyList<float> endLogits, int contextStart, int maxAnswerLength)
    {
        if (maxAnswerLength < 1) throw new ArgumentException("max_answer_len: must be at least 1", "max_answer_len");
        int n = startLogits.Count - contextStart;
        if (n <= 0) throw new ArgumentException("context: it has no tokens", "context");
        var pStart = Probabilities.Softmax(startLogits.Skip(contextStart).ToArray());
        var pEnd = Probabilities.Softmax(endLogits.Skip(contextStart).ToArray());
        (int S, int E, double Score) best = (0, 0, -1);
        for (int s = 0; s < n; s++)
            for (int e = s; e < Math.Min(n, s + maxAnswerLength); e++)
                if (pStart[s] * pEnd[e] > best.Score) best = (s, e, pStart[s] * pEnd[e]);
        return best;
    }

    /// <summary>The span of context tokens [first, last] as the context's characters.</summary>
    public static AnswerSpan ToText(Gpt2Tokenizer tokenizer, string context, IReadOnlyList<int> contextIds, int first, int last, double score)
    {
        // Byte offsets of each token (byte-level BPE: the tokens' bytes are the context's UTF-8), then characters.
        int byteStart = contextIds.Take(first).Sum(id => tokenizer.TokenBytes(id).Length);
        int byteEnd = byteStart + contextIds.Skip(first).Take(last - first + 1).Sum(id => tokenizer.TokenBytes(id).Length);
        int start = CharAt(context, byteStart, roundUp: false), end = CharAt(context, byteEnd, roundUp: true);
        while (start < end && char.IsWhiteSpace(context[start])) start++;
        while (end > start && char.IsWhiteSpace(context[end - 1])) end--;
        return new AnswerSpan(context[start..end], start, end, score);
    }

    /// <summary>The character index at a UTF-8 byte offset; an offset inside a character goes to its start, or past it when <paramref name="roundUp"/>.</summary>
    private static int CharAt(string text, int byteOffset, bool roundUp)
    {
        int bytes = 0, chars = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (bytes >= byteOffset) return chars;
            int next = bytes + rune.Utf8SequenceLength;
            if (next > byteOffset) return roundUp ? chars + rune.Utf16SequenceLength : chars;
            bytes = next;
            chars += rune.Utf16SequenceLength;
        }
        return chars;
    }

}
