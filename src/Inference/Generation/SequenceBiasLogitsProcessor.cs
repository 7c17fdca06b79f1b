using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>SequenceBiasLogitsProcessor</c>: adds a bias to a token (one-token sequences: always; longer
/// ones: when the row ends with the rest of the sequence). OpenAI's logit_bias is the one-token case.</summary>
public sealed class SequenceBiasLogitsProcessor(IReadOnlyList<(IReadOnlyList<int> Sequence, double Bias)> biases) : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        var bias = new float[scores.shape[0] * scores.shape[1]];
        int vocab = (int)scores.shape[1];
        for (int row = 0; row < inputIds.Count; row++)
            foreach (var (sequence, value) in biases)
                if (EndsWithPrefix(inputIds[row], sequence)) bias[row * vocab + sequence[^1]] += (float)value;
        return scores.add_(TorchSharp.torch.tensor(bias, scores.shape, device: scores.device));
    }

    private static bool EndsWithPrefix(IReadOnlyList<int> ids, IReadOnlyList<int> sequence)
    {
        int prefix = sequence.Count - 1;
        if (ids.Count < prefix) return false;
        for (int k = 0; k < prefix; k++)
            if (ids[ids.Count - prefix + k] != sequence[k]) return false;
        return true;
    }
}
