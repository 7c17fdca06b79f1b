using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// HF's <c>BaseModelOutputWithPast</c>. <see cref="HiddenStates"/> holds the input of every block and, last, the
/// output after <c>ln_f</c> (n_layer + 1 tensors); <see cref="Attentions"/> the post-softmax weights of each block.
/// The past keys/values live in the <see cref="KeyValueCache"/> passed in. Disposing frees every tensor.
/// </summary>
public sealed record Gpt2ModelOutput(Tensor LastHiddenState, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions) : IDisposable
{
    public void Dispose()
    {
        LastHiddenState.Dispose();
        foreach (var t in HiddenStates ?? []) t.Dispose();
        foreach (var t in Attentions ?? []) t.Dispose();
    }
}
