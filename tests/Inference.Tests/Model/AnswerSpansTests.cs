using Gpt2Orleans.Inference.QuestionAnswering;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Model;

/// <summary>The QA pipeline's span search and offsets, on hand-made logits.</summary>
public sealed class AnswerSpansTests
{
    [Fact]
    public void The_best_span_respects_order_length_and_the_question_mask()
    {
        // The two question tokens have the highest logits and must be ignored; the rest is checked against every pair.
        float[] start = [9, 9, 0, 0, 1, 3, 0];
        float[] end = [9, 9, 0, 4, 0, 2, 0];
        var (s, e, score) = AnswerSpans.Best(start, end, contextStart: 2, maxAnswerLength: 15);
        double Soft(float[] v, int i) => Math.Exp(v[i]) / v.Skip(2).Sum(x => Math.Exp(x));
        (int, int, double) best = (0, 0, -1);
        for (int a = 0; a < 5; a++) for (int b = a; b < 5; b++) if (Soft(start, a + 2) * Soft(end, b + 2) > best.Item3) best = (a, b, Soft(start, a + 2) * Soft(end, b + 2));
        Assert.Equal(best, (s, e, score));
        Assert.Equal((3, 3), (s, e));
        // The end must not come before the start, and the span must fit max_answer_len.
        var (s1, e1, _) = AnswerSpans.Best([0, 5, 0], [5, 0, 0], 0, 15);
        Assert.True(s1 <= e1);
        Assert.Equal((0, 2), AnswerSpans.Best([5, 0, 0], [0, 0, 5], 0, 3) is var (a3, b3, _) ? (a3, b3) : default);
        Assert.True(AnswerSpans.Best([5, 0, 0], [0, 0, 5], 0, 2) is var (a2, b2, _) && b2 - a2 < 2);
        Assert.Throws<ArgumentException>(() => AnswerSpans.Best([1f], [1f], 0, 0));
    }

    [Fact]
    public void Offsets_are_characters_of_the_context_without_the_leading_space()
    {
        const string context = "Zoë met 東京 friends";
        var ids = Gpt2Tokenizer.Default.Encode(context);
        for (int first = 0; first < ids.Count; first++)
            for (int last = first; last < ids.Count; last++)
            {
                var span = AnswerSpans.ToText(Gpt2Tokenizer.Default, context, ids, first, last, 0.5);
                Assert.Equal(context[span.Start..span.End], span.Answer);
                Assert.Equal(span.Answer, span.Answer.Trim());
                Assert.Contains(span.Answer, context);
            }
        var whole = AnswerSpans.ToText(Gpt2Tokenizer.Default, context, ids, 0, ids.Count - 1, 1);
        Assert.Equal(context, whole.Answer);
    }
}
