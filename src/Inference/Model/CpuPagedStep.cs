using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// Every block of a paged step of few tokens (at most <see cref="CpuMatVec.MaxRows"/>: decoding sequences, a short
/// prompt's prefill, or both) on the CPU, with the activations in our own float32 memory from the embeddings to the final LayerNorm: ln_1, c_attn,
/// the K/V write, paged attention, c_proj and the residual, ln_2, c_fc and the activation, c_proj and the residual,
/// in HF's <c>GPT2Block</c> order, the products in <see cref="CpuMatVec"/> and attention in <see cref="CpuPagedAttention"/>.
/// Why: run through libtorch, the same step made ~30 small ops per layer (layer norms, bias adds, views, copies,
/// conversions) at 5–20 µs each, measured 3–4 ms of a 25 ms GPT-2 small step on 2 cores, where the weights alone
/// take ~18 ms to stream. The per-block forward stays the reference; the tests hold this path to it. bf16 models keep
/// bf16 weights, with float32 activations in between (libtorch rounds them to bf16 after every op); the K/V are
/// written and read in the pool's dtype, float32 or bf16, whatever the model's. Where the policy says so
/// (<see cref="KernelPolicy.NativeBFloat16Gemm"/>: many rows on a CPU with bf16 dot products) the bf16 products go
/// to libtorch's bf16 GEMM instead, the rest of the step staying here.
/// </summary>
internal static unsafe class CpuPagedStep
{
    /// <summary>Whether this step is one the fused path serves: few rows, the mat-vec policy, a config it knows.</summary>
    public static bool Applies(Gpt2Model model, PagedBatch batch, KvBlockPool pool, KernelPolicy policy)
    {
        var config = model.Config;
        return policy.MatVecStep(model.DType, model.Device, batch.TokenCount)
            && !config.ReorderAndUpcastAttn
            && config.NEmbd % 16 == 0 && config.InnerDim % 16 == 0 && config.HeadDim % 8 == 0
            && ActivationOf(config.ActivationFunction) is not null
            && CpuPagedAttention.Reads(pool.KeyStorage(0));
    }

    /// <summary>
    /// The transformer over the step's flat token ids (N, CPU int64): the embeddings (wte's rows, dequantized where it is
    /// quantized, plus wpe's), every block, and the final LayerNorm; returns the final hidden states (N, E) in the model's
    /// dtype. Token ids outside the vocabulary are refused as the per-block forward refuses them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    public static Tensor Forward(Gpt2Model model, Tensor tokenIds, PagedBatch batch, KvBlockPool pool, KernelPolicy policy)
    {
        var config = model.Config;
        int n = batch.TokenCount, e = (int)config.NEmbd, inner = (int)config.InnerDim;
        bool gemm = policy.NativeBFloat16Gemm(model.DType, n);
        var parametersOf = FusedStepParameters.For(model);
        var activation = ActivationOf(config.ActivationFunction)!.Value;
        // Each row attends over its sequence's slots up to its own position (its K/V are written first: causal).
        var rowSlots = new long[n][];
        var rowLengths = new int[n];
        for (int s = 0; s < batch.Sequences.Count; s++)
        {
            var sequence = batch.Sequences[s];
            for (int i = 0; i < sequence.QueryLength; i++)
                (rowSlots[sequence.QueryStart + i], rowLengths[sequence.QueryStart + i]) = (batch.HostContextSlots[s], sequence.ContextLength + i + 1);
        }
        var buffers = ArrayPool<float>.Shared;
        float[] x = buffers.Rent(n * e), normed = buffers.Rent(n * e), qkv = buffers.Rent(n * 3 * e), query = buffers.Rent(n * e),
            attended = buffers.Rent(n * e), feedForward = buffers.Rent(n * inner), projected = buffers.Rent(n * e),
            parameters = buffers.Rent(4 * e + 3 * e + e + inner + e);
        try
        {
            Embed(model, parametersOf, tokenIds, batch.HostPositions, x, normed);
            fixed (float* xp = x, np = normed, qkvp = qkv, qp = query, ap = attended, fp = feedForward, pp = projected, wp = parameters)
            {
                // Per block: ln_1 γ, β | ln_2 γ, β | c_attn b | attn.c_proj b | c_fc b | mlp.c_proj b, widened to float32.
                float* ln1Weight = wp, ln1Bias = wp + e, ln2Weight = wp + 2 * e, ln2Bias = wp + 3 * e;
                float* attnBias = wp + 4 * e, attnProjBias = attnBias + 3 * e, fcBias = attnProjBias + e, mlpProjBias = fcBias + inner;
                for (int layer = 0; layer < config.NLayer; layer++)
                {
                    var block = model.h[layer];
                    var p = parametersOf[layer];
                    ReadFloats(p.Ln1Weight, ln1Weight); ReadFloats(p.Ln1Bias, ln1Bias);
                    ReadFloats(p.Ln2Weight, ln2Weight); ReadFloats(p.Ln2Bias, ln2Bias);
                    ReadFloats(p.AttnBias, attnBias); ReadFloats(p.AttnProjBias, attnProjBias);
                    ReadFloats(p.FcBias, fcBias); ReadFloats(p.MlpProjBias, mlpProjBias);

                    // x + attn(ln_1(x))
                    LayerNormRows(xp, np, n, e, ln1Weight, ln1Bias, (float)block.ln_1.Eps);
                    Linear(np, n, e, block.attn.c_attn, p.AttnWeight, qkvp, 3 * e, attnBias, gemm);
                    WriteKeyValues(qkvp, n, e, batch.HostWriteSlots, pool, layer);
                    for (int r = 0; r < n; r++) Copy(qkvp + (long)r * 3 * e, qp + (long)r * e, e);
                    CpuPagedAttention.Attend(qp, ap, n, config.NHead, config.HeadDim,
                        pool.KeyAddress(layer), pool.ValueAddress(layer), pool.DType, rowSlots, rowLengths, block.attn.Scale);
                    LinearResidual(ap, n, e, block.attn.c_proj, p.AttnProjWeight, pp, attnProjBias, xp, gemm);

                    // x + mlp(ln_2(x))
                    LayerNormRows(xp, np, n, e, ln2Weight, ln2Bias, (float)block.ln_2.Eps);
                    Linear(np, n, e, block.mlp.c_fc, p.FcWeight, fp, inner, fcBias, gemm);
                    Activate(fp, n * inner, activation);
                    LinearResidual(fp, n, inner, block.mlp.c_proj, p.MlpProjWeight, pp, mlpProjBias, xp, gemm);
                }
                ReadFloats(parametersOf.LnFWeight, ln1Weight); ReadFloats(parametersOf.LnFBias, ln1Bias);
                LayerNormRows(xp, np, n, e, ln1Weight, ln1Bias, (float)model.ln_f.Eps);
            }
            var result = torch.empty([n, e], ScalarType.Float32);
            normed.AsSpan(0, n * e).CopyTo(MemoryMarshal.Cast<byte, float>(result.bytes));
            if (model.DType == ScalarType.Float32) return result;
            using (result) return result.to(model.DType);
        }
        finally
        {
            foreach (var b in new[] { x, normed, qkv, query, attended, feedForward, projected, parameters }) buffers.Return(b);
        }
    }

    /// <summary>x (N, E) = wte[id] + wpe[position] for each token, in float32; <paramref name="row"/> is scratch for one row.</summary>
    private static void Embed(Gpt2Model model, FusedStepParameters parameters, Tensor tokenIds, long[] positions, float[] x, float[] row)
    {
        bool host = tokenIds.dtype == ScalarType.Int64 && tokenIds.device_type == DeviceType.CPU && tokenIds.is_contiguous();
        using var converted = host ? null : tokenIds.to(ScalarType.Int64).cpu().contiguous();
        var ids = MemoryMarshal.Cast<byte, long>((converted ?? tokenIds).bytes);
        var config = model.Config;
        int e = (int)config.NEmbd;
        if (ids.Length > 0)
        {
            long min = long.MaxValue, max = long.MinValue;
            foreach (long id in ids) (min, max) = (Math.Min(min, id), Math.Max(max, id));
            Gpt2Model.CheckRange(min, max, config.VocabSize, "input_ids", "token id", "vocabulary");
        }
        for (int r = 0; r < ids.Length; r++)
        {
            var embedded = x.AsSpan(r * e, e);
            if (parameters.Wte is { } wte) CpuMatVec.ReadFloat32(wte.Row((int)ids[r]), embedded);
            else model.wte.Quantized!.DequantizeRow((int)ids[r], embedded);
            CpuMatVec.ReadFloat32(parameters.Wpe.Row((int)positions[r]), row.AsSpan(0, e));
            fixed (float* xp = embedded, wp = row) AddInPlace(xp, wp, e);
        }
    }

    /// <summary>
    /// y (rows, out) = x · Wᵀ + b, in the dense or the quantized kernel, or for a bf16 W in libtorch's bf16 GEMM when
    /// <paramref name="gemm"/> (<see cref="KernelPolicy.NativeBFloat16Gemm"/>); x is consumed (laid out in place for the kernel).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    private static void Linear(float* x, int rows, int inFeatures, Conv1D projection, TensorMemory? dense, float* y, int outFeatures, float* bias, bool gemm)
    {
        if (dense is not { } weight) QuantizedMatVec.Multiply(projection.Quantized!, x, rows, y);
        else if (gemm) NativeGemm(x, rows, inFeatures, projection.WeightOutIn!, y);
        else
        {
            CpuMatVec.Arrange(x, rows * inFeatures, weight.DType, x);
            CpuMatVec.Multiply(x, rows, weight, y);
        }
        for (int r = 0; r < rows; r++) AddInPlace(y + (long)r * outFeatures, bias, outFeatures);
    }

    /// <summary>y = x · Wᵀ for a bf16 W [out, in] in libtorch's GEMM: x rounded to bf16 as libtorch's own bf16 forward holds it, the product widened back.</summary>
    private static void NativeGemm(float* x, int rows, int inFeatures, Tensor weightOutIn, float* y)
    {
        using var input = torch.empty([rows, inFeatures], ScalarType.BFloat16);
        fixed (byte* ip = input.bytes) ToBFloat16(x, (ushort*)ip, rows * inFeatures);
        using var product = torch.nn.functional.linear(input, weightOutIn);
        ReadFloats(TensorMemory.Of(product), y);
    }

    /// <summary>residual (rows, E) += x · Wᵀ + b, through <paramref name="scratch"/>; x is consumed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    private static void LinearResidual(float* x, int rows, int inFeatures, Conv1D projection, TensorMemory? dense, float* scratch, float* bias, float* residual, bool gemm)
    {
        int outFeatures = projection.WeightShape.Out;
        Linear(x, rows, inFeatures, projection, dense, scratch, outFeatures, bias, gemm);
        AddInPlace(residual, scratch, rows * outFeatures);
    }

    /// <summary>This layer's K and V (the second and third thirds of each qkv row) into their slots in the pool, in its dtype.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    private static void WriteKeyValues(float* qkv, int rows, int e, long[] slots, KvBlockPool pool, int layer)
    {
        byte* kp = (byte*)pool.KeyAddress(layer), vp = (byte*)pool.ValueAddress(layer);
        bool bf16 = pool.DType == ScalarType.BFloat16;
        for (int r = 0; r < rows; r++)
        {
            float* key = qkv + (long)r * 3 * e + e, value = key + e;
            long at = slots[r] * e;
            if (bf16) { ToBFloat16(key, (ushort*)kp + at, e); ToBFloat16(value, (ushort*)vp + at, e); }
            else { Copy(key, (float*)kp + at, e); Copy(value, (float*)vp + at, e); }
        }
    }

    /// <summary>float32 → bf16, rounding to nearest even as libtorch does (NaN stays NaN), sixteen values a step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    internal static void ToBFloat16(float* source, ushort* destination, int count)
    {
        int i = 0;
        for (; i + 16 <= count; i += 16)
            Vector256.Narrow(RoundToBFloat16(Vector256.Load(source + i)), RoundToBFloat16(Vector256.Load(source + i + 8))).Store(destination + i);
        for (; i < count; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(source[i]);
            destination[i] = float.IsNaN(source[i]) ? (ushort)0x7FC0 : (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
        }
    }

    /// <summary>Each value's bf16 bits (in the low half of its lane): the tail loop's rounding, eight at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> RoundToBFloat16(Vector256<float> x)
    {
        var bits = x.AsUInt32();
        var rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        return Vector256.ConditionalSelect(Vector256.Equals(x, x).AsUInt32(), rounded, Vector256.Create(0x7FC0u));
    }

    private static void ReadFloats(TensorMemory t, float* destination) => CpuMatVec.ReadFloat32(t, new Span<float>(destination, t.Count));

    /// <summary>HF's LayerNorm over each row: (x − mean) / √(var + eps) · γ + β, the variance biased, in float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    private static void LayerNormRows(float* x, float* y, int rows, int e, float* weight, float* bias, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            float* row = x + (long)r * e, output = y + (long)r * e;
            float mean = Sum(row, e) / e;
            var m = Vector256.Create(mean);
            Vector256<float> squares = default;
            for (int i = 0; i < e; i += 8) { var d = Vector256.Load(row + i) - m; squares = Vector256.FusedMultiplyAdd(d, d, squares); }
            var inverse = Vector256.Create(1f / MathF.Sqrt(Vector256.Sum(squares) / e + eps));
            for (int i = 0; i < e; i += 8)
                Vector256.FusedMultiplyAdd((Vector256.Load(row + i) - m) * inverse, Vector256.Load(weight + i), Vector256.Load(bias + i)).Store(output + i);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    private static float Sum(float* x, int count)
    {
        Vector256<float> s0 = default, s1 = default;
        int i = 0;
        for (; i + 16 <= count; i += 16) { s0 += Vector256.Load(x + i); s1 += Vector256.Load(x + i + 8); }
        for (; i < count; i += 8) s0 += Vector256.Load(x + i);
        return Vector256.Sum(s0 + s1);
    }

    /// <summary>x += y over <paramref name="count"/> values (a multiple of 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    private static void AddInPlace(float* x, float* y, int count)
    {
        for (int i = 0; i < count; i += 8) (Vector256.Load(x + i) + Vector256.Load(y + i)).Store(x + i);
    }

    private static void Copy(float* source, float* destination, int count) =>
        new ReadOnlySpan<float>(source, count).CopyTo(new Span<float>(destination, count));

    /// <summary>The activations this path computes itself, each the formula <see cref="Activations"/> names.</summary>
    private enum Activation { TanhGelu, Relu, Identity }

    private static Activation? ActivationOf(string name) => name switch
    {
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => Activation.TanhGelu, // the same tanh approximation
        "relu" => Activation.Relu,
        "linear" => Activation.Identity,
        _ => null, // the per-block forward serves the others
    };

    /// <summary>The activation in place over <paramref name="count"/> values (a multiple of 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    private static void Activate(float* x, int count, Activation activation)
    {
        if (activation == Activation.Identity) return;
        for (int i = 0; i < count; i += 8)
        {
            var v = Vector256.Load(x + i);
            (activation == Activation.Relu ? Vector256.Max(v, Vector256<float>.Zero) : TanhGelu(v)).Store(x + i);
        }
    }

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), tanh as (1 − e^(−2|u|)) / (1 + e^(−2|u|)) with u's sign (no overflow).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> TanhGelu(Vector256<float> x)
    {
        var u = Vector256.Create(0.7978845608028654f) * Vector256.FusedMultiplyAdd(Vector256.Create(0.044715f) * x * x, x, x);
        var exp = Vector256.Exp(Vector256.Create(-2f) * Vector256.Abs(u));
        var magnitude = (Vector256<float>.One - exp) / (Vector256<float>.One + exp);
        var tanh = Vector256.ConditionalSelect(Vector256.LessThan(u, Vector256<float>.Zero), -magnitude, magnitude);
        return Vector256.Create(0.5f) * x * (Vector256<float>.One + tanh);
    }
}
