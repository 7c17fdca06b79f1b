using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>SuppressTokensLogitsProcessor</c> (always) and <c>SuppressTokensAtBeginLogitsProcessor</c> (only
/// when the row is exactly <paramref name="atLength"/> long: the first generated token).</summary>
public sealed class SuppressTokensLogitsProcessor(IReadOnlyCollection<int> tokens, int? atLength = null) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores) =>
        atLength is null || inputIds[0].Count == atLength ? TokenMask.BanColumns(scores, tokens) : scores;
}
