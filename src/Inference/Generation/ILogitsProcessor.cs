using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// HF's <c>LogitsProcessor</c>/<c>LogitsWarper</c>: rewrites next-token scores (N, V) float32 given each row's
/// full sequence so far (prompt, padding included, and generated tokens). May modify <paramref name="scores"/>
/// in place; returns the result (allocated in the caller's dispose scope).
/// </summary>
public interface ILogitsProcessor
{
    Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores);
}
