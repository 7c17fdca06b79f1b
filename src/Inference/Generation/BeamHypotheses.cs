namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// HF's <c>BeamHypotheses</c>: the best <c>num_beams</c> finished hypotheses of one prompt (or beam group), scored
/// sum_logprobs / generated_len ** length_penalty, with HF's worst-score bookkeeping and tie order.
/// </summary>
public sealed class BeamHypotheses(int numBeams, double lengthPenalty, EarlyStopping earlyStopping, int maxNewTokens)
{
    /// <param name="Payload">what the caller attached (e.g. the tokens' log-probabilities)</param>
    public sealed record Hypothesis(double Score, IReadOnlyList<int> Tokens, bool EndedWithEos, object? Payload = null);

    private readonly List<Hypothesis> _beams = [];
    private double _worstScore = 1e9;

    public IReadOnlyList<Hypothesis> Beams => _beams;
    public int Count => _beams.Count;

    /// <param name="tokens">the new tokens (eos excluded)</param>
    /// <param name="generatedLength">new tokens counted for the length penalty</param>
    public void Add(IReadOnlyList<int> tokens, double sumLogprobs, int generatedLength, bool endedWithEos, object? payload = null)
    {
        double score = sumLogprobs / Math.Pow(generatedLength, lengthPenalty);
        if (_beams.Count < numBeams || score > _worstScore)
        {
            _beams.Add(new Hypothesis(score, tokens, endedWithEos, payload));
            if (_beams.Count > numBeams)
            {
                // Python's sorted() of (score, index) pairs: by score, then by insertion index.
                var sorted = _beams.Select((b, i) => (b.Score, Index: i)).OrderBy(p => p.Score).ThenBy(p => p.Index).ToList();
                _beams.RemoveAt(sorted[0].Index);
                _worstScore = sorted[1].Score;
            }
            else _worstScore = Math.Min(score, _worstScore);
        }
    }

    /// <summary>Whether no open beam can still beat the worst kept hypothesis.</summary>
    public bool IsDone(double bestSumLogprobs, int generatedLength)
    {
        if (_beams.Count < numBeams) return false;
        if (earlyStopping == EarlyStopping.True) return true;
        int length = earlyStopping == EarlyStopping.Never && lengthPenalty > 0 ? maxNewTokens : generatedLength;
        double highestAttainable = bestSumLogprobs / Math.Pow(length, lengthPenalty);
        return _worstScore >= highestAttainable;
    }
}
