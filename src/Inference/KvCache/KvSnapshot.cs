using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// A kept sequence's KV copied out of the pool (to spill a conversation to disk): its tokens, how many of them have
/// KV (<see cref="Computed"/>), and per layer K then V as [Computed, n_head, head_dim] in <see cref="DType"/>.
/// </summary>
public sealed record KvSnapshot(int[] Tokens, int Computed, int Layers, int Heads, int HeadDim, ScalarType DType, byte[] Data)
{
    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => throw new ArgumentException($"KV dtype {dtype} is not supported"),
    };

    /// <summary>Bytes of K (or V) of one layer.</summary>
    public long LayerBytes => (long)Computed * Heads * HeadDim * ElementSize(DType);

    public long ExpectedDataLength => 2L * Layers * LayerBytes;
}
