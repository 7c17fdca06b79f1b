using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// HF's <c>GPT2Attention</c> (self-attention only). The fused <c>scaled_dot_product_attention</c> kernel is the
/// default; the eager path (HF's <c>_attn</c> / <c>_upcast_and_reordered_attn</c>) runs when attention weights
/// are requested or the config asks for <c>reorder_and_upcast_attn</c>.
/// </summary>
public sealed class Gpt2Attention : nn.Module
{
    public readonly Conv1D c_attn;
    public readonly Conv1D c_proj;

    private readonly int _nHead;
    private readonly int _headDim;
    private readonly long _embed;
    private readonly double _scale;                 // total factor applied to q·k
    private readonly bool _reorderAndUpcast;
    private readonly bool _scaleWeights;
    private readonly int _layerIdx;
    private readonly bool _scaleByLayer;

    public Gpt2Attention(Gpt2Config config, int layerIdx, ScalarType dtype, Device device) : base(nameof(Gpt2Attention))
    {
        _nHead = config.NHead;
        _headDim = config.HeadDim;
        _embed = config.NEmbd;
        _layerIdx = layerIdx;
        _scaleWeights = config.ScaleAttnWeights;
        _scaleByLayer = config.ScaleAttnByInverseLayerIdx;
        _reorderAndUpcast = config.ReorderAndUpcastAttn;
        _scale = (_scaleWeights ? 1.0 / Math.Sqrt(_headDim) : 1.0) / (_scaleByLayer ? layerIdx + 1 : 1);
        c_attn = new Conv1D(3 * config.NEmbd, config.NEmbd, dtype, device);
        c_proj = new Conv1D(config.NEmbd, config.NEmbd, dtype, device);
        RegisterComponents();
    }

    /// <param name="hidden">(B, T, E)</param>
    /// <param name="weights">post-softmax attention (B, nh, T, past+T) when <paramref name="outputAttentions"/>.</param>
    public Tensor forward(Tensor hidden, AttentionMask mask, KeyValueCache? cache, bool outputAttentions, out Tensor? weights)
    {
        long b = hidden.shape[0], t = hidden.shape[1];
        var qkv = c_attn.forward(hidden);                                        // (B, T, 3E)
        var parts = qkv.split(_embed, 2);
        var query = SplitHeads(parts[0], b, t);                                  // (B, nh, T, hs)
        var key = SplitHeads(parts[1], b, t);
        var value = SplitHeads(parts[2], b, t);
        if (cache is not null) (key, value) = cache.Append(_layerIdx, key, value); // (B, nh, past+T, hs)

        Tensor output;
        if (outputAttentions || _reorderAndUpcast)
        {
            output = EagerAttention(query, key, value, mask, out var w);
            weights = outputAttentions ? w : null;
        }
        else
        {
            // The fused kernel always divides by sqrt(hs); fold any other scale into the query.
            var q = Math.Abs(_scale * Math.Sqrt(_headDim) - 1.0) < 1e-12 ? query : query * (_scale * Math.Sqrt(_headDim));
            output = nn.functional.scaled_dot_product_attention(q, key, value, mask.Bias, 0.0, mask.IsCausal);
            weights = null;
        }
        var merged = output.permute(0, 2, 1, 3).reshape(b, t, _embed);          // (B, T, E)
        return c_proj.forward(merged);
    }

    private Tensor SplitHeads(Tensor x, long b, long t) =>
        x.view(b, t, _nHead, _headDim).permute(0, 2, 1, 3);                     // (B, nh, T, hs)

    /// <summary>HF's eager math, step for step (division by sqrt(hs), then by layer_idx + 1).</summary>
    private Tensor EagerAttention(Tensor query, Tensor key, Tensor value, AttentionMask mask, out Tensor weights)
    {
        Tensor scores;
        if (_reorderAndUpcast)
        {
            // _upcast_and_reordered_attn: q·k in float32 with the scale folded into the product.
            scores = torch.matmul(query.to(ScalarType.Float32), key.to(ScalarType.Float32).transpose(-1, -2)) * _scale;
        }
        else
        {
            scores = torch.matmul(query, key.transpose(-1, -2));                // (B, nh, T, L)
            if (_scaleWeights) scores = scores / Math.Sqrt(_headDim);
            if (_scaleByLayer) scores = scores / (double)(_layerIdx + 1);
        }
        var bias = mask.Bias;
        if (bias is null && mask.IsCausal)
            throw new InvalidOperationException("the eager attention path needs an explicit mask");
        if (bias is not null) scores = scores + bias.to(scores.dtype);
        weights = nn.functional.softmax(scores, -1).to(value.dtype);
        return torch.matmul(weights, value);
    }
}
