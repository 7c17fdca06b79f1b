using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// libtorch's CPU matrix multiply picks its kernel by the number of rows: below 16 rows (one row above all) its sums
/// round differently (by ~1e-6) than from 16 rows on. A request's logits then depend on how many others the engine
/// batched it with, and a seeded sample can come out differently alone than under load. With a minimum of 16 rows,
/// smaller batches are padded with zero rows so every batch size takes the same kernel and each row's result is the
/// same bit for bit. It costs compute on small batches (a decode step alone does 16 rows of work), so it is opt-in:
/// <see cref="Gpt2PreTrainedModel.MakeBatchInvariant"/>.
/// </summary>
public static class BatchInvariantMatmul
{
    public const int KernelRows = 16;

    /// <summary>bias + rows @ weight, for rows [M, in], with at least <paramref name="minRows"/> rows multiplied.</summary>
    public static Tensor Addmm(Tensor bias, Tensor rows, Tensor weight, int minRows)
    {
        long m = rows.shape[0];
        if (m >= minRows || rows.device_type != DeviceType.CPU) return addmm(bias, rows, weight, 1, 1);
        using var padded = Pad(rows, minRows);
        using var all = addmm(bias, padded, weight, 1, 1);
        return all.narrow(0, 0, m).contiguous();
    }

    /// <summary>x @ weightᵀ, for x [..., in] and weight [out, in], with at least <paramref name="minRows"/> rows multiplied.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, int minRows)
    {
        long m = x.numel() / x.shape[^1];
        if (m >= minRows || x.device_type != DeviceType.CPU) return nn.functional.linear(x, weight);
        var outShape = x.shape.ToArray();
        outShape[^1] = weight.shape[0];
        using var flat = x.reshape(m, x.shape[^1]);
        using var padded = Pad(flat, minRows);
        using var all = nn.functional.linear(padded, weight);
        return all.narrow(0, 0, m).reshape(outShape);
    }

    private static Tensor Pad(Tensor rows, int minRows)
    {
        using var zeros = torch.zeros([minRows - rows.shape[0], rows.shape[1]], rows.dtype, rows.device);
        return torch.cat([rows, zeros], 0);
    }
}
