using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>MinLengthLogitsProcessor</c> and <c>MinNewTokensLengthLogitsProcessor</c>: eos is impossible while
/// the row (minus <paramref name="promptLength"/> for the new-tokens variant) is shorter than the minimum.</summary>
public sealed class MinLengthLogitsProcessor(int minLength, IReadOnlyCollection<int> eosTokenIds, int promptLength = 0) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores) =>
        inputIds[0].Count - promptLength < minLength ? TokenMask.BanColumns(scores, eosTokenIds) : scores;
}
