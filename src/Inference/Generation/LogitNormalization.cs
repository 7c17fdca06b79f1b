using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>LogitNormalization</c> (renormalize_logits): log-softmax after every other processor.</summary>
public sealed class LogitNormalization : ILogitsProcessor
{
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores) => scores.log_softmax(-1);
}
