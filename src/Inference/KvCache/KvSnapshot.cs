using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// A kept sequence's KV copied out of the pool (to spill a conversation to disk): its tokens, how many of them have
/// KV (<see cref="Computed"/>), and <see cref="Data"/> = [layers, 2 (K, V), Computed, n_head, head_dim] on the CPU.
/// The data is a tensor, not a managed array, so tens of megabytes never pass through the garbage collector.
/// </summary>
public sealed class KvSnapshot(int[] tokens, int computed, Tensor data) : IDisposable
{
    public int[] Tokens { get; } = tokens;
    public int Computed { get; } = computed;
    public Tensor Data { get; } = data;
    public int Layers => (int)Data.shape[0];
    public int Heads => (int)Data.shape[3];
    public int HeadDim => (int)Data.shape[4];
    public ScalarType DType => Data.dtype;

    public static long[] ShapeOf(int layers, int computed, int heads, int headDim) => [layers, 2, computed, heads, headDim];

    public void Dispose() => Data.Dispose();
}
