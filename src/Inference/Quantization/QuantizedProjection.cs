using System.Runtime.InteropServices;
using Gpt2Orleans.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// x · Wᵀ (+ b) over a <see cref="QuantizedWeight"/>, for tensors: steps of up to 64 rows on the CPU run
/// <see cref="QuantizedMatVec"/> (the integer kernel, or dequantized float tiles from four rows); more rows (a long
/// prefill), batch-invariant products and other devices dequantize the weight a slice of outputs at a time for
/// libtorch (<see cref="SlicedFloat32Linear"/>). The dequantized values are the same either way.
/// </summary>
internal static unsafe class QuantizedProjection
{
    /// <summary>(..., in) → (..., out) in x's dtype.</summary>
    public static Tensor Apply(QuantizedWeight w, Tensor x, Tensor? bias, KernelPolicy policy)
    {
        if (x.size(-1) != w.InFeatures) throw new ArgumentException($"input has {x.size(-1)} features, the quantized weight {w.InFeatures}");
        long rows = x.numel() / w.InFeatures;
        var shape = x.shape.ToArray();
        shape[^1] = w.OutFeatures;
        using var scope = torch.NewDisposeScope();
        var flat = policy.UsesQuantizedKernel(x.device, rows) ? Kernel(w, x, (int)rows) : Dequantized(w, x.reshape(rows, w.InFeatures), policy);
        var result = flat.view(shape).to(x.dtype);
        if (bias is not null) result = result.add(bias);
        return result.MoveToOuterDisposeScope();
    }

    private static Tensor Kernel(QuantizedWeight w, Tensor x, int rows)
    {
        using var contiguous = x.contiguous();
        var input = new float[rows * w.InFeatures];
        CpuMatVec.ReadFloat32(contiguous, input);
        var output = torch.empty([rows, w.OutFeatures], ScalarType.Float32);
        fixed (float* xp = input)
        fixed (float* yp = MemoryMarshal.Cast<byte, float>(output.bytes))
            QuantizedMatVec.Multiply(w, xp, rows, yp);
        return output;
    }

    private static Tensor Dequantized(QuantizedWeight w, Tensor x, KernelPolicy policy) =>
        SlicedFloat32Linear.Apply(x, w.OutFeatures, w.InFeatures, (first, destination) =>
        {
            var values = MemoryMarshal.Cast<byte, float>(destination.bytes);
            for (int o = 0; o < destination.size(0); o++) w.DequantizeRow(first + o, values.Slice(o * w.InFeatures, w.InFeatures));
        }, policy.MinRows);

    /// <summary>The rows of the weight that <paramref name="ids"/> name (a quantized embedding's lookup), (..., in) in <paramref name="dtype"/>.</summary>
    public static Tensor Rows(QuantizedWeight w, Tensor ids, ScalarType dtype, Device device)
    {
        using var flat = ids.reshape(-1).cpu();
        var indices = flat.data<long>().ToArray();
        var values = new float[indices.Length * w.InFeatures];
        for (int k = 0; k < indices.Length; k++)
        {
            if (indices[k] < 0 || indices[k] >= w.OutFeatures) throw new ArgumentOutOfRangeException(nameof(ids), $"index {indices[k]} is outside the table (0..{w.OutFeatures - 1})");
            w.DequantizeRow((int)indices[k], values.AsSpan(k * w.InFeatures, w.InFeatures));
        }
        using var rows = torch.tensor(values, [.. ids.shape, w.InFeatures]);
        return rows.to(dtype, device);
    }
}
