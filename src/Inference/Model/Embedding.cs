using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>A lookup table (HF's <c>nn.Embedding</c>), allocated empty so loading a checkpoint skips random initialisation.</summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight; // [num_embeddings, dim]

    public Embedding(long count, long dim, ScalarType dtype, Device device) : base(nameof(Embedding))
    {
        weight = Parameters.Empty([count, dim], dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        var shape = ids.shape.Append(weight.shape[1]).ToArray();
        using var flat = ids.reshape(-1);
        using var rows = weight.index_select(0, flat);
        return rows.view(shape);
    }
}
