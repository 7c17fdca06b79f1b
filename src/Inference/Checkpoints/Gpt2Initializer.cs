using Gpt2Orleans.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>
/// HF's <c>GPT2PreTrainedModel._init_weights</c>: weights and embeddings ~ N(0, initializer_range), residual
/// projections (<c>c_proj.weight</c>) ~ N(0, initializer_range / sqrt(2·n_layer)), biases 0, LayerNorm 1 and 0.
/// Deterministic for a seed: parameters are filled in name order from one generator.
/// </summary>
public static class Gpt2Initializer
{
    public static void Initialize(Gpt2PreTrainedModel model, IReadOnlySet<string>? only = null, long seed = 0)
    {
        var config = model.Config;
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)seed);
        foreach (var (name, parameter) in model.StateDict().OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (only is not null && !only.Contains(name)) continue;
            bool isLayerNorm = name.Contains(".ln_") || name.StartsWith("transformer.ln_f.", StringComparison.Ordinal);
            if (isLayerNorm) { if (name.EndsWith(".weight", StringComparison.Ordinal)) parameter.fill_(1.0); else parameter.zero_(); }
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) parameter.zero_();
            else
            {
                double std = name.EndsWith("c_proj.weight", StringComparison.Ordinal)
                    ? config.InitializerRange / Math.Sqrt(2.0 * config.NLayer)
                    : config.InitializerRange;
                // Draw on the CPU in float32 so a seed gives the same weights on every device and dtype.
                using var values = torch.empty(parameter.shape, ScalarType.Float32).normal_(0, std, generator);
                parameter.copy_(values);
            }
        }
    }
}
