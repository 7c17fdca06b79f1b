using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>ForcedBOSTokenLogitsProcessor</c> and <c>ForcedEOSTokenLogitsProcessor</c>: when the row is
/// <paramref name="atLength"/> tokens long, only <paramref name="token"/> may come next.</summary>
public sealed class ForcedTokenLogitsProcessor(int token, int atLength) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        if (inputIds[0].Count != atLength) return scores;
        scores.fill_(double.NegativeInfinity);
        return scores.index_fill_(1, torch.tensor(new long[] { token }, device: scores.device), 0.0);
    }
}
