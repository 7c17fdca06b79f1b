using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>NoRepeatNGramLogitsProcessor</c>: bans any token that would repeat an n-gram already in the row
/// (n-grams over the whole row, prompt and pads included).</summary>
public sealed class NoRepeatNGramLogitsProcessor(int ngramSize) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        var banned = new List<(int, int)>();
        for (int row = 0; row < inputIds.Count; row++)
            foreach (var token in BannedTokens(inputIds[row], ngramSize)) banned.Add((row, token));
        return TokenMask.Ban(scores, banned);
    }

    public static IEnumerable<int> BannedTokens(IReadOnlyList<int> ids, int n)
    {
        int length = ids.Count;
        if (length + 1 < n) yield break;
        int prefixStart = length + 1 - n; // the last n−1 tokens
        var seen = new HashSet<int>();
        for (int start = 0; start + n <= length; start++)
        {
            bool matches = true;
            for (int k = 0; k < n - 1 && matches; k++) matches = ids[start + k] == ids[prefixStart + k];
            if (matches && seen.Add(ids[start + n - 1])) yield return ids[start + n - 1];
        }
    }
}
