using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// OpenAI's presence and frequency penalties (vLLM implements the same): for every token j generated so far in
/// the row (the prompt does not count), score[j] −= frequency · count(j) + presence · [count(j) &gt; 0].
/// Not in HF's generate; ours, for the OpenAI-compatible API.
/// </summary>
public sealed class PresenceFrequencyPenaltyLogitsProcessor(double presence, double frequency, int promptLength) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        long vocab = scores.shape[1];
        var penalty = new float[inputIds.Count * vocab];
        bool any = false;
        for (int r = 0; r < inputIds.Count; r++)
        {
            var counts = new Dictionary<int, int>();
            for (int j = promptLength; j < inputIds[r].Count; j++) counts[inputIds[r][j]] = counts.GetValueOrDefault(inputIds[r][j]) + 1;
            foreach (var (token, count) in counts)
            {
                if (token < 0 || token >= vocab) continue;
                penalty[r * vocab + token] = (float)(frequency * count + presence);
                any = true;
            }
        }
        return any ? scores.sub_(torch.tensor(penalty, [inputIds.Count, vocab], device: scores.device)) : scores;
    }
}
