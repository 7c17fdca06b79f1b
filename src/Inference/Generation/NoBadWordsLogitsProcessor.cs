using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>NoBadWordsLogitsProcessor</c>: a one-token bad word is always banned; a longer one has its last
/// token banned when the row ends with the rest of it. Sequences equal to an eos id are ignored, as in HF.</summary>
public sealed class NoBadWordsLogitsProcessor : ILogitsProcessor
{
    private readonly int[] _single;
    private readonly IReadOnlyList<int>[] _multi;

    public NoBadWordsLogitsProcessor(IEnumerable<IReadOnlyList<int>> badWordsIds, IReadOnlyCollection<int> eosTokenIds)
    {
        var words = badWordsIds.Where(w => !(w.Count == 1 && eosTokenIds.Contains(w[0]))).ToList();
        _single = words.Where(w => w.Count == 1).Select(w => w[0]).Distinct().ToArray();
        _multi = words.Where(w => w.Count > 1).ToArray();
    }

    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        scores = TokenMask.BanColumns(scores, _single);
        var banned = new List<(int, int)>();
        for (int row = 0; row < inputIds.Count; row++)
        {
            var ids = inputIds[row];
            foreach (var word in _multi)
            {
                int prefix = word.Count - 1;
                if (ids.Count < prefix) continue;
                bool matches = true;
                for (int k = 0; k < prefix && matches; k++) matches = ids[ids.Count - prefix + k] == word[k];
                if (matches) banned.Add((row, word[^1]));
            }
        }
        return TokenMask.Ban(scores, banned);
    }
}
