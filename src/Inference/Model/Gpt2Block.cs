using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.KvCache;
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
        Tensor? attentionWeights = null;
        var output = Residuals(hidden, normed => attn.forward(normed, mask, cache, outputAttentions, out attentionWeights), mlp.forward);
        weights = attentionWeights?.MoveToOuterDisposeScope();
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>The same block over a flat batch of tokens whose K/V live in a block pool.</summary>
    internal Tensor forwardPaged(Tensor hidden, PagedBatch batch, KvBlockPool pool, KernelPolicy policy)
    {
        using var scope = torch.NewDisposeScope();
        return Residuals(hidden, normed => attn.forwardPaged(normed, batch, pool, policy), normed => mlp.forward(normed, policy))
            .MoveToOuterDisposeScope();
    }

    /// <summary>x + attn(ln_1(x)), then + mlp(ln_2(·)).</summary>
    private Tensor Residuals(Tensor hidden, Func<Tensor, Tensor> attention, Func<Tensor, Tensor> feedForward)
    {
        var residual = attention(ln_1.forward(hidden)).add_(hidden);
        return feedForward(ln_2.forward(residual)).add_(residual);
    }
}
