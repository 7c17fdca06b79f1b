namespace Gpt2Orleans.Inference.Scoring;

/// <summary>
/// The floor a language model must clear: each token's probability is its frequency in the training stream
/// (add-one smoothed over the vocabulary, so unseen tokens are possible), regardless of context. Scored over the
/// same predicted tokens as the model (every token after the first).
/// </summary>
public static class UnigramBaseline
{
    public static Perplexity Evaluate(IReadOnlyList<int> training, IReadOnlyList<int> ids, int vocabSize)
    {
        if (ids.Count < 2) throw new ArgumentException("perplexity needs at least two tokens", "file");
        var counts = new long[vocabSize];
        foreach (int id in training) counts[id]++;
        double total = training.Count + (double)vocabSize;
        double nll = 0;
        for (int i = 1; i < ids.Count; i++) nll -= Math.Log((counts[ids[i]] + 1) / total);
        double loss = nll / (ids.Count - 1);
        return new Perplexity(loss, Math.Exp(loss), ids.Count - 1);
    }
}
