using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// Creates inference parameters that belong to their module, never to a dispose scope that happens to be open
/// while the model is built (that scope would free the weights when it closes).
/// </summary>
internal static class Parameters
{
    public static Parameter Empty(long[] shape, ScalarType dtype, Device device) =>
        new(torch.empty(shape, dtype, device).DetachFromDisposeScope(), requires_grad: false);

    public static Parameter Filled(long[] shape, double value, ScalarType dtype, Device device) =>
        new(torch.full(shape, value, dtype, device).DetachFromDisposeScope(), requires_grad: false);
}
