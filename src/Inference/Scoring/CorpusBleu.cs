using System.Text.RegularExpressions;

namespace Gpt2Orleans.Inference.Scoring;

/// <summary>A corpus BLEU score, its modified n-gram precisions (1..N), brevity penalty and the lengths it compared.</summary>
public sealed record BleuScore(double Score, IReadOnlyList<double> Precisions, double BrevityPenalty, long HypothesisLength, long ReferenceLength);

/// <summary>
/// Corpus BLEU (Papineni et al. 2002) as NLTK's <c>corpus_bleu</c> and sacreBLEU compute it without smoothing: n-gram
/// matches clipped by each n-gram's largest count in any reference, summed over the corpus before dividing; the
/// brevity penalty exp(1 − r/c) from the total hypothesis length c and the closest reference length r of each
/// hypothesis (the shorter on a tie); uniform weights over orders 1..N (4 by default). A zero precision makes it 0.
/// </summary>
public static partial class CorpusBleu
{
    public static BleuScore Compute(IReadOnlyList<IReadOnlyList<IReadOnlyList<string>>> references, IReadOnlyList<IReadOnlyList<string>> hypotheses, int maxOrder = 4)
    {
        if (references.Count != hypotheses.Count) throw new ArgumentException($"{hypotheses.Count} hypotheses for {references.Count} reference sets");
        if (hypotheses.Count == 0) throw new ArgumentException("BLEU needs at least one hypothesis", "file");
        if (maxOrder < 1) throw new ArgumentException($"max order must be at least 1, got {maxOrder}");
        var matches = new long[maxOrder];
        var totals = new long[maxOrder];
        long hypothesisLength = 0, referenceLength = 0;
        for (int s = 0; s < hypotheses.Count; s++)
        {
            var hypothesis = hypotheses[s];
            if (references[s].Count == 0) throw new ArgumentException($"hypothesis {s + 1} has no reference", "file");
            hypothesisLength += hypothesis.Count;
            referenceLength += references[s].Select(r => r.Count).OrderBy(r => Math.Abs(r - hypothesis.Count)).ThenBy(r => r).First();
            for (int n = 1; n <= maxOrder; n++)
            {
                var counts = NGrams(hypothesis, n);
                var maxReference = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var reference in references[s])
                    foreach (var (gram, count) in NGrams(reference, n))
                        maxReference[gram] = Math.Max(count, maxReference.GetValueOrDefault(gram));
                foreach (var (gram, count) in counts) matches[n - 1] += Math.Min(count, maxReference.GetValueOrDefault(gram));
                totals[n - 1] += Math.Max(0, hypothesis.Count - n + 1);
            }
        }
        var precisions = Enumerable.Range(0, maxOrder).Select(n => totals[n] == 0 ? 0 : (double)matches[n] / totals[n]).ToList();
        double penalty = hypothesisLength == 0 ? 0 : hypothesisLength > referenceLength ? 1 : Math.Exp(1 - (double)referenceLength / hypothesisLength);
        double score = precisions.Any(p => p == 0) ? 0 : penalty * Math.Exp(precisions.Average(Math.Log));
        return new BleuScore(score, precisions, penalty, hypothesisLength, referenceLength);
    }

    private static Dictionary<string, int> NGrams(IReadOnlyList<string> tokens, int n)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= tokens.Count; i++)
        {
            string gram = string.Join('\u0001', tokens.Skip(i).Take(n));
            counts[gram] = counts.GetValueOrDefault(gram) + 1;
        }
        return counts;
    }

    [GeneratedRegex(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])")]
    private static partial Regex Punctuation();

    [GeneratedRegex(@"([^0-9])([\.,])")]
    private static partial Regex PeriodCommaAfter();

    [GeneratedRegex(@"([\.,])([^0-9])")]
    private static partial Regex PeriodCommaBefore();

    [GeneratedRegex(@"([0-9])(-)")]
    private static partial Regex DashAfterDigit();

    /// <summary>
    /// mteval-v13a's tokenization (sacreBLEU's default, "13a"): punctuation split off, except periods and commas inside
    /// numbers; case kept. The usual way to turn generated and reference text into BLEU's tokens.
    /// </summary>
    public static IReadOnlyList<string> Tokenize(string text)
    {
        text = text.Replace("<skipped>", "").Replace("-\n", "").Replace("\n", " ");
        text = " " + text + " ";
        text = Punctuation().Replace(text, " $1 ");
        text = PeriodCommaAfter().Replace(text, "$1 $2 ");
        text = PeriodCommaBefore().Replace(text, " $1 $2");
        text = DashAfterDigit().Replace(text, "$1 $2 ");
        return text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
    }
}
