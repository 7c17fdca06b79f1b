using Gpt2Orleans.Inference.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// A lookup table (HF's <c>nn.Embedding</c>, weight [num_embeddings, dim]), allocated empty so loading a checkpoint
/// skips random initialisation. The tied <c>wte</c> of a quantized LM model is quantized (it is the LM head); its
/// lookup dequantizes the rows it reads.
/// </summary>
public sealed class Embedding : QuantizableModule
{
    private readonly ScalarType _dtype;
    private readonly Device _device;

    public Embedding(long count, long dim, ScalarType dtype, Device device) : base(nameof(Embedding), count, dim, dtype, device)
    {
        (_dtype, _device) = (dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        if (Quantized is { } quantized) return QuantizedProjection.Rows(quantized, ids, _dtype, _device);
        var shape = ids.shape.Append(weight!.shape[1]).ToArray();
        using var flat = ids.reshape(-1);
        using var rows = weight.index_select(0, flat);
        return rows.view(shape);
    }
}
