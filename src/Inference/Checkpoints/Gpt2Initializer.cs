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
    /// <summary>A model from <paramref name="config"/> made by <paramref name="create"/>, initialised from <paramref name="seed"/>, in eval mode.</summary>
    public static T CreateRandom<T>(Gpt2Config config, long seed, ModelLoadOptions? options, Func<Gpt2Config, ScalarType, Device, T> create)
        where T : Gpt2PreTrainedModel
    {
        options ??= new ModelLoadOptions();
        Native.TorchNativeLoader.EnsureLoaded(options.Log);
        config.Validate();
        var model = create(config, options.DType, DeviceSpec.Parse(options.Device));
        Initialize(model, seed: seed);
        model.eval();
        if (options.Quantization is { } quantization) model.Quantize(quantization);
        return model;
    }

    /// <summary>Whether a parameter belongs to a LayerNorm (<c>ln_1</c>, <c>ln_2</c>, <c>ln_f</c>): initialised to 1 and 0, and not weight-decayed.</summary>
    public static bool IsLayerNorm(string name) =>
        name.Contains(".ln_", StringComparison.Ordinal) || name.StartsWith("transformer.ln_f.", StringComparison.Ordinal);

    public static void Initialize(Gpt2PreTrainedModel model, IReadOnlySet<string>? only = null, long seed = 0)
    {
        var config = model.Config;
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)seed);
        foreach (var (name, parameter) in model.StateDict().OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (only is not null && !only.Contains(name)) continue;
            if (IsLayerNorm(name)) { if (name.EndsWith(".weight", StringComparison.Ordinal)) parameter.fill_(1.0); else parameter.zero_(); }
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
