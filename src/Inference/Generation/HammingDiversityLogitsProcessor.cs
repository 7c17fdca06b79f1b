using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// HF's <c>HammingDiversityLogitsProcessor</c> for diverse beam search: a group's scores are lowered by
/// diversity_penalty for every time an earlier group of the same prompt chose that token at this step.
/// </summary>
public sealed class HammingDiversityLogitsProcessor(double diversityPenalty, int numBeams, int numBeamGroups)
{
    private readonly int _groupSize = numBeams / numBeamGroups;

    /// <param name="scores">the group's scores, (prompts · group size, V)</param>
    /// <param name="currentTokens">this step's tokens of all rows so far, [prompt · num_beams + beam]</param>
    public Tensor Process(Tensor scores, IReadOnlyList<int> currentTokens, int group)
    {
        if (group == 0 || diversityPenalty == 0) return scores;
        long vocab = scores.shape[1];
        int prompts = currentTokens.Count / numBeams;
        var frequency = new float[prompts * vocab];
        for (int p = 0; p < prompts; p++)
            for (int previous = 0; previous < group * _groupSize; previous++)
                frequency[p * vocab + currentTokens[p * numBeams + previous]] += 1;
        var penalty = torch.tensor(frequency, [prompts, 1, vocab], device: scores.device) * diversityPenalty;
        return (scores.view(prompts, _groupSize, vocab) - penalty).view(prompts * _groupSize, vocab);
    }
}
