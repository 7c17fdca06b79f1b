using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>HF's <c>GPT2Block</c>: pre-LayerNorm attention and MLP, each with a residual connection.</summary>
public sealed class Gpt2Block : nn.Module
{
    public readonly LayerNorm ln_1;
    public readonly Gpt2Attention attn;
    public readonly LayerNorm ln_2;
    public readonly Gpt2Mlp mlp;

    public Gpt2Block(Gpt2Config config, int layerIdx, ScalarType dtype, Device device) : base("GPT2Block")
    {
        ln_1 = new LayerNorm(config.NEmbd, config.LayerNormEpsilon, dtype, device);
        attn = new Gpt2Attention(config, layerIdx, dtype, device);
        ln_2 = new LayerNorm(config.NEmbd, config.LayerNormEpsilon, dtype, device);
        mlp = new Gpt2Mlp(config, dtype, device);
        RegisterComponents();
    }

    /// <summary>Runs in its own dispose scope so one layer's temporaries are freed before the next layer runs.</summary>
    public Tensor forward(Tensor hidden, AttentionMask mask, KeyValueCache? cache, bool outputAttentions, out Tensor? weights)
    {
        using var scope = torch.NewDisposeScope();
        var attended = attn.forward(ln_1.forward(hidden), mask, cache, outputAttentions, out weights);
        var residual = attended.add_(hidden);
        var output = mlp.forward(ln_2.forward(residual)).add_(residual);
        if (weights is not null) weights = weights.MoveToOuterDisposeScope();
        return output.MoveToOuterDisposeScope();
    }
}
