using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>RepetitionPenaltyLogitsProcessor</c>: every id already in the row (prompt and pads included)
/// gets score·p if negative, score/p otherwise.</summary>
public sealed class RepetitionPenaltyLogitsProcessor(double penalty) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        int width = inputIds.Max(r => r.Count);
        if (width == 0) return scores;
        // Rows are padded with their own last id; a repeated index penalises the same token once (scatter writes the same value).
        var flat = new long[inputIds.Count * width];
        for (int r = 0; r < inputIds.Count; r++)
            for (int j = 0; j < width; j++) flat[r * width + j] = inputIds[r][Math.Min(j, inputIds[r].Count - 1)];
        var index = torch.tensor(flat, [inputIds.Count, width], device: scores.device);
        var score = scores.gather(1, index);
        score = torch.where(score.lt(0), score * penalty, score / penalty);
        return scores.scatter_(1, index, score);
    }
}
