using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.KvCache;
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
    private readonly double _attnPdrop;
    private readonly double _residPdrop;

    public Gpt2Attention(Gpt2Config config, int layerIdx, ScalarType dtype, Device device) : base(nameof(Gpt2Attention))
    {
        _nHead = config.NHead;
        _headDim = config.HeadDim;
        _embed = config.NEmbd;
        _layerIdx = layerIdx;
        _scaleWeights = config.ScaleAttnWeights;
        _scaleByLayer = config.ScaleAttnByInverseLayerIdx;
        _reorderAndUpcast = config.ReorderAndUpcastAttn;
        _attnPdrop = config.AttnPdrop;
        _residPdrop = config.ResidPdrop;
        _scale = (_scaleWeights ? 1.0 / Math.Sqrt(_headDim) : 1.0) / (_scaleByLayer ? layerIdx + 1 : 1);
        c_attn = new Conv1D(3 * config.NEmbd, config.NEmbd, dtype, device);
        c_proj = new Conv1D(config.NEmbd, config.NEmbd, dtype, device);
        RegisterComponents();
    }

    /// <summary>The factor applied to q·k.</summary>
    internal double Scale => _scale;

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

        var output = Attend(query, key, value, mask, outputAttentions, out weights);
        var merged = output.permute(0, 2, 1, 3).reshape(b, t, _embed);          // (B, T, E)
        return TrainingDropout.Apply(c_proj.forward(merged), _residPdrop, training);
    }

    /// <summary>
    /// Paged attention over a flat batch (N, E) of new tokens from several sequences: their K/V are written to the
    /// pool, and each sequence attends over all its positions, read through its block table.
    /// </summary>
    internal Tensor forwardPaged(Tensor hidden, PagedBatch batch, KvBlockPool pool, KernelPolicy policy)
    {
        long n = hidden.shape[0];
        var parts = c_attn.forward(hidden, policy).split(_embed, 1);                // 3 × (N, E)
        var query = parts[0].view(n, _nHead, _headDim);                         // (N, nh, hs)
        pool.Write(_layerIdx, batch.WriteSlots, parts[1].view(n, _nHead, _headDim), parts[2].view(n, _nHead, _headDim));
        var output = torch.empty([n, _nHead, _headDim], hidden.dtype, hidden.device);
        bool kernel = !_reorderAndUpcast && CpuPagedAttention.Applies(query, pool.KeyStorage(_layerIdx));
        // The padded group's fused attention rounds by the group's longest context, so under a batch-invariant
        // policy each decoding sequence attends over its own positions instead, as a prefill chunk does.
        bool together = batch.Decode is not null && (kernel || !policy.BatchInvariant);
        if (together && batch.Decode is { } decode)
        {
            if (kernel)
            {
                var q = query.index_select(0, decode.Rows);                                            // (S, nh, hs)
                using var attended = CpuPagedAttention.Decode(q, pool.KeyStorage(_layerIdx), pool.ValueStorage(_layerIdx), decode.HostSlots, _scale);
                output.index_copy_(0, decode.Rows, attended);
            }
            else
            {
                // Other devices and dtypes: gather the padded K/V once per layer and attend in one fused call.
                long count = decode.SequenceIndices.Length;
                var q = query.index_select(0, decode.Rows).unsqueeze(2);                              // (S, nh, 1, hs)
                var keys = KvBlockPool.Read(pool.KeyStorage(_layerIdx), decode.Slots, hidden.dtype)
                    .view(count, decode.MaxLength, _nHead, _headDim).permute(0, 2, 1, 3);              // (S, nh, L, hs)
                var values = KvBlockPool.Read(pool.ValueStorage(_layerIdx), decode.Slots, hidden.dtype)
                    .view(count, decode.MaxLength, _nHead, _headDim).permute(0, 2, 1, 3);
                using var mask = AttentionMask.Borrowing(decode.Bias);
                output.index_copy_(0, decode.Rows, Attend(q, keys, values, mask, false, out _).squeeze(2));
            }
        }
        for (int i = 0; i < batch.Sequences.Count; i++)
        {
            var s = batch.Sequences[i];
            if (s.QueryLength == 1 && together) continue; // attended above
            var (key, value) = pool.Gather(_layerIdx, batch.ContextSlots[i], hidden.dtype); // (L, nh, hs)
            var q = query.narrow(0, s.QueryStart, s.QueryLength).permute(1, 0, 2).unsqueeze(0); // (1, nh, T, hs)
            using var mask = AttentionMask.Create(null, s.QueryLength, s.ContextLength, hidden.dtype, hidden.device, explicitBias: _reorderAndUpcast);
            var attended = Attend(q, key.permute(1, 0, 2).unsqueeze(0), value.permute(1, 0, 2).unsqueeze(0), mask, false, out _);
            output.narrow(0, s.QueryStart, s.QueryLength).copy_(attended.squeeze(0).permute(1, 0, 2));
        }
        return c_proj.forward(output.view(n, _embed), policy);
    }

    /// <summary>The fused kernel, or HF's eager math when weights are requested or reorder_and_upcast_attn is set.</summary>
    private Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionMask mask, bool outputAttentions, out Tensor? weights)
    {
        if (outputAttentions || _reorderAndUpcast)
        {
            var output = EagerAttention(query, key, value, mask, out var w);
            weights = outputAttentions ? w : null;
            return output;
        }
        // The fused kernel always divides by sqrt(hs); fold any other scale into the query.
        var q = Math.Abs(_scale * Math.Sqrt(_headDim) - 1.0) < 1e-12 ? query : query * (_scale * Math.Sqrt(_headDim));
        weights = null;
        return nn.functional.scaled_dot_product_attention(q, key, value, mask.Bias, training ? _attnPdrop : 0.0, mask.IsCausal);
    }

    private Tensor SplitHeads(Tensor x, long b, long t) =>
        x.view(b, t, _nHead, _headDim).permute(0, 2, 1, 3);                     // (B, nh, T, hs)

    /// <summary>HF's eager math, step for step (division by sqrt(hs), then by layer_idx + 1).</summary>
    private Tensor EagerAttention(Tensor query, Tensor key, Tensor value, AttentionMask mask, out Tensor weights)
    {
        Tensor scores;
        if (_reorderAndUpcast)
        {
            // _upcast_and_reordered_attn: q·k in float32 with the scale folded into the product (float64 stays float64).
            var upcast = query.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
            scores = torch.matmul(query.to(upcast), key.to(upcast).transpose(-1, -2)) * _scale;
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
        weights = TrainingDropout.Apply(nn.functional.softmax(scores, -1).to(value.dtype), _attnPdrop, training); // as HF: the weights returned are after dropout
        return torch.matmul(weights, value);
    }
}
