using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>HF's <c>ACT2FN</c>: the activation functions a GPT-2 config may name, with HF's exact formulas.</summary>
public static class Activations
{
    private static readonly Dictionary<string, Func<Tensor, Tensor>> Functions = new()
    {
        // NewGELUActivation: the tanh approximation GPT-2 was trained with; libtorch's "tanh" GELU is the same formula.
        ["gelu_new"] = x => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        ["gelu_pytorch_tanh"] = x => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        ["gelu"] = x => nn.functional.gelu(x),
        ["gelu_python"] = x => nn.functional.gelu(x),
        ["gelu_fast"] = GeluFast,
        ["quick_gelu"] = x => x * torch.sigmoid(x * 1.702),
        ["gelu_10"] = x => torch.clamp(nn.functional.gelu(x), -10, 10),
        ["relu"] = x => nn.functional.relu(x),
        ["relu6"] = x => nn.functional.relu6(x),
        ["silu"] = x => nn.functional.silu(x),
        ["swish"] = x => nn.functional.silu(x),
        ["tanh"] = x => torch.tanh(x),
        ["sigmoid"] = x => torch.sigmoid(x),
        ["mish"] = x => nn.functional.mish(x),
        ["linear"] = x => x.alias(),
    };

    public static IEnumerable<string> Names => Functions.Keys;

    public static bool IsSupported(string name) => Functions.ContainsKey(name);

    public static Func<Tensor, Tensor> Get(string name) =>
        Functions.TryGetValue(name, out var f) ? f : throw new ArgumentException($"activation_function '{name}' is not supported");

    /// <summary>FastGELUActivation: 0.5x(1 + tanh(0.7978845608·x·(1 + 0.044715x²))).</summary>
    private static Tensor GeluFast(Tensor x)
    {
        using var inner = x * 0.7978845608 * (1.0 + 0.044715 * x * x);
        using var t = torch.tanh(inner);
        return 0.5 * x * (1.0 + t);
    }
}
