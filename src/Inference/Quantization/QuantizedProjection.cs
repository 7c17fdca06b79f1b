using System.Runtime.InteropServices;
using Gpt2Orleans.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// x · Wᵀ (+ b) over a <see cref="QuantizedWeight"/>, for tensors: steps of up to 64 rows on the CPU run
/// <see cref="QuantizedMatVec"/> (the integer kernel, or dequantized float tiles from four rows); more rows (a long
/// prefill), batch-invariant products and other devices
/// dequantize the weight a slice of outputs at a time and multiply in libtorch, in float32 on the CPU (its fast
/// GEMM here; its bf16 one is slower) and in the model's dtype elsewhere. The dequantized values are the same either way.
/// </summary>
internal static unsafe class QuantizedProjection
{
    /// <summary>Weights dequantized per libtorch product: 4 MB of float32 (1,365 outputs of GPT-2 small's 768 inputs).</summary>
    private const int SliceWeights = 1 << 20;

    /// <summary>(..., in) → (..., out) in x's dtype.</summary>
    public static Tensor Apply(QuantizedWeight w, Tensor x, Tensor? bias, KernelPolicy policy)
    {
        if (x.shape[^1] != w.InFeatures) throw new ArgumentException($"input has {x.shape[^1]} features, the quantized weight {w.InFeatures}");
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

    private static Tensor Dequantized(QuantizedWeight w, Tensor x, KernelPolicy policy)
    {
        var compute = x.device_type == DeviceType.CPU ? ScalarType.Float32 : x.dtype;
        using var input = x.to(compute);
        var output = torch.empty([x.shape[0], w.OutFeatures], compute, x.device);
        int sliceOutputs = Math.Clamp(SliceWeights / w.InFeatures, 1, w.OutFeatures);
        // One buffer for every slice: a fresh allocation each time page-faults its memory in again.
        using var buffer = torch.empty([sliceOutputs, w.InFeatures], ScalarType.Float32);
        var values = MemoryMarshal.Cast<byte, float>(buffer.bytes);
        for (int first = 0; first < w.OutFeatures; first += sliceOutputs)
        {
            int count = Math.Min(sliceOutputs, w.OutFeatures - first);
            for (int o = 0; o < count; o++) w.DequantizeRow(first + o, values.Slice(o * w.InFeatures, w.InFeatures));
            using var slice = buffer.narrow(0, 0, count);
            using var weight = slice.to(compute, x.device);
            using var product = BatchInvariantMatmul.Linear(input, weight, policy.MinRows);
            using var target = output.narrow(1, first, count);
            target.copy_(product);
        }
        return output;
    }

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
