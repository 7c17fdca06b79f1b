using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// The KV memory of one model on one device, allocated once: per layer, keys and values as
/// [blocks · block_size, n_head, head_dim] (a "slot" is one token position in one block). Tensors only: which
/// blocks a sequence holds is the <see cref="BlockAllocator"/>'s bookkeeping (owned by the engine's KV-cache
/// manager), and callers address the pool by slot = block · block_size + offset. Its dtype may differ from the
/// model's (<c>--kv-dtype</c>: bf16 K/V under float32 compute halve the bytes attention reads): K/V are converted as
/// they are written, and the CPU attention kernels widen bf16 as they read it.
/// </summary>
internal sealed class KvBlockPool : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;
    private readonly nint[] _keyAddresses, _valueAddresses; // CPU pools: their memory, asked of libtorch once (the kernels' pointers)

    public int BlockSize { get; }
    public ScalarType DType { get; }
    public Device Device { get; }
    /// <summary>K and V of one token across all layers.</summary>
    public long BytesPerToken { get; }

    public KvBlockPool(Gpt2Config config, int blocks, int blockSize, ScalarType dtype, Device device)
    {
        if (!Supports(dtype)) throw new ArgumentException($"a KV cache in {dtype} is not supported: use float32, bfloat16 or float16");
        BlockSize = blockSize;
        DType = dtype;
        Device = device;
        BytesPerToken = BytesPerTokenOf(config, dtype);
        long slots = (long)blocks * blockSize;
        _keys = new Tensor[config.NLayer];
        _values = new Tensor[config.NLayer];
        for (int layer = 0; layer < config.NLayer; layer++)
        {
            _keys[layer] = torch.zeros([slots, config.NHead, config.HeadDim], dtype, device).DetachFromDisposeScope();
            _values[layer] = torch.zeros([slots, config.NHead, config.HeadDim], dtype, device).DetachFromDisposeScope();
        }
        bool cpu = device.type == DeviceType.CPU;
        _keyAddresses = [.. _keys.Select(k => cpu ? Model.TensorMemory.AddressOf(k) : 0)];
        _valueAddresses = [.. _values.Select(v => cpu ? Model.TensorMemory.AddressOf(v) : 0)];
    }

    public static long BytesPerTokenOf(Gpt2Config config, ScalarType dtype) =>
        2L * config.NLayer * config.NEmbd * (dtype is ScalarType.Float32 ? 4 : 2);

    /// <summary>The dtypes a pool may hold.</summary>
    public static bool Supports(ScalarType dtype) => dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>How many blocks fit in <paramref name="bytes"/> (configuration may size the pool by memory).</summary>
    public static int BlocksForBytes(Gpt2Config config, long bytes, int blockSize, ScalarType dtype) =>
        (int)Math.Min(int.MaxValue, bytes / (BytesPerTokenOf(config, dtype) * blockSize));

    /// <summary>Stores this step's keys and values (N, n_head, head_dim) at their slots (N), in the pool's dtype.</summary>
    internal void Write(int layer, Tensor slots, Tensor key, Tensor value)
    {
        using var scope = torch.NewDisposeScope();
        _keys[layer].index_copy_(0, slots, key.to(DType));
        _values[layer].index_copy_(0, slots, value.to(DType));
    }

    /// <summary>Copies of the K and V at the given slots (L, n_head, head_dim), in <paramref name="dtype"/>.</summary>
    internal (Tensor Key, Tensor Value) Gather(int layer, Tensor slots, ScalarType dtype) =>
        (Read(_keys[layer], slots, dtype), Read(_values[layer], slots, dtype));

    /// <summary>The rows of <paramref name="storage"/> at <paramref name="slots"/> in <paramref name="dtype"/>.</summary>
    internal static Tensor Read(Tensor storage, Tensor slots, ScalarType dtype)
    {
        var rows = storage.index_select(0, slots);
        if (rows.dtype == dtype) return rows;
        using (rows) return rows.to(dtype);
    }

    internal Tensor KeyStorage(int layer) => _keys[layer];
    internal Tensor ValueStorage(int layer) => _values[layer];

    /// <summary>Where a CPU pool's keys (values) of a layer lie: [slots, n_head, head_dim] in <see cref="DType"/>, allocated once, never moved.</summary>
    internal nint KeyAddress(int layer) => _keyAddresses[layer];
    internal nint ValueAddress(int layer) => _valueAddresses[layer];

    /// <summary>The K/V at a sequence's first <paramref name="computed"/> slots, copied out with its <paramref name="tokens"/> (see <see cref="KvSnapshot"/>).</summary>
    public KvSnapshot Snapshot(long[] slots, IReadOnlyList<int> tokens, int computed)
    {
        var first = _keys[0];
        var data = torch.empty(KvSnapshot.ShapeOf(_keys.Length, computed, (int)first.shape[1], (int)first.shape[2]), DType);
        for (int layer = 0; layer < _keys.Length; layer++)
            for (int kv = 0; kv < 2; kv++)
                CopyRows(kv == 0 ? _keys[layer] : _values[layer], slots, data[layer, kv], toPool: false);
        return new KvSnapshot([.. tokens], computed, data);
    }

    /// <summary>
    /// Writes a snapshot's K/V for positions [<paramref name="from"/>, Computed) into their <paramref name="slots"/> (the
    /// earlier ones are shared cache hits), converted to the pool's dtype if it was taken from a pool of another.
    /// </summary>
    public void Restore(long[] slots, KvSnapshot snapshot, int from)
    {
        var first = _keys[0];
        if (snapshot.Layers != _keys.Length || snapshot.Heads != first.shape[1] || snapshot.HeadDim != first.shape[2] || !Supports(snapshot.DType))
            throw new ArgumentException("the KV snapshot's shapes or dtype do not match this pool");
        if (from >= snapshot.Computed) return;
        for (int layer = 0; layer < _keys.Length; layer++)
            for (int kv = 0; kv < 2; kv++)
            {
                using var scope = torch.NewDisposeScope();
                var rows = snapshot.Data[layer, kv].narrow(0, from, snapshot.Computed - from).to(DType);
                CopyRows(kv == 0 ? _keys[layer] : _values[layer], slots, rows, toPool: true);
            }
    }

    /// <summary>
    /// Copies whole slots between a layer's storage and <paramref name="rows"/> (one row per slot, on the CPU). On a
    /// CPU pool each slot is one memory copy, with no temporary tensor (temporaries of tens of megabytes cost more
    /// in page faults than the copy itself); on other devices index_select / index_copy_ do it there.
    /// </summary>
    private unsafe void CopyRows(Tensor storage, long[] slots, Tensor rows, bool toPool)
    {
        using var scope = torch.NewDisposeScope();
        if (Device.type != DeviceType.CPU || storage.numel() * storage.ElementSize > int.MaxValue) // Tensor.bytes spans at most 2 GB
        {
            var index = torch.tensor(slots, device: Device);
            if (toPool) storage.index_copy_(0, index, rows.to(Device));
            else rows.copy_(storage.index_select(0, index).cpu());
            return;
        }
        long rowBytes = storage.shape[1] * storage.shape[2] * storage.ElementSize;
        var contiguous = rows.contiguous();
        byte* pool = (byte*)Model.TensorMemory.AddressOf(storage);
        byte* other = (byte*)Model.TensorMemory.AddressOf(contiguous);
        for (int i = 0; i < slots.Length; i++)
        {
            byte* slot = pool + slots[i] * rowBytes, row = other + i * rowBytes;
            if (toPool) Buffer.MemoryCopy(row, slot, rowBytes, rowBytes);
            else Buffer.MemoryCopy(slot, row, rowBytes, rowBytes);
        }
        if (!toPool && !ReferenceEquals(contiguous, rows)) rows.copy_(contiguous);
    }

    /// <summary>Copy-on-write: a block's K/V (all layers) into another block.</summary>
    public void CopyBlock(int source, int destination)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var storage in _keys.Concat(_values))
            storage.narrow(0, (long)destination * BlockSize, BlockSize).copy_(storage.narrow(0, (long)source * BlockSize, BlockSize));
    }

    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}
