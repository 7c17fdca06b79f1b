using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// HF's dropout (embd_pdrop, attn_pdrop, resid_pdrop, the heads' own): active only while a module trains
/// (<c>model.train()</c>); at evaluation and serving it is the identity and allocates nothing.
/// </summary>
internal static class TrainingDropout
{
    public static Tensor Apply(Tensor x, double p, bool training) =>
        training && p > 0 ? nn.functional.dropout(x, p, training: true) : x;

    /// <summary>
    /// The dense forward builds an autograd graph only while training; otherwise it runs in inference mode (no
    /// graph, no saved tensors). Null (nothing to dispose) while training.
    /// </summary>
    public static IDisposable? InferenceUnlessTraining(bool training) => training ? null : inference_mode();
}
