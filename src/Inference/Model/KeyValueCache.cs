using TorchSharp;
using static TorchSharp.torch;

using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// Past keys and values of every layer, preallocated as [B, n_head, capacity, head_dim] so a decode step writes
/// one position in place instead of concatenating (which would copy the whole cache every step).
/// </summary>
public sealed class KeyValueCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

    public int Length { get; private set; }
    public int Capacity { get; private set; }
    public long BatchSize => _keys[0].shape[0];
    public int LayerCount => _keys.Length;

    public KeyValueCache(Gpt2Config config, long batchSize, int capacity, ScalarType dtype, Device device)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), "cache capacity must be positive");
        Capacity = capacity;
        _keys = new Tensor[config.NLayer];
        _values = new Tensor[config.NLayer];
        for (int i = 0; i < config.NLayer; i++)
        {
            _keys[i] = torch.zeros([batchSize, config.NHead, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();
            _values[i] = torch.zeros([batchSize, config.NHead, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();
        }
    }

    /// <summary>Grows (copying) when <paramref name="length"/> positions would not fit.</summary>
    internal void EnsureCapacity(int length)
    {
        if (length <= Capacity) return;
        int capacity = Math.Max(length, Capacity * 2);
        for (int i = 0; i < _keys.Length; i++)
        {
            _keys[i] = Grow(_keys[i], capacity);
            _values[i] = Grow(_values[i], capacity);
        }
        Capacity = capacity;
    }

    private Tensor Grow(Tensor old, int capacity)
    {
        var shape = old.shape;
        // The cache outlives the forward pass that grows it, so it must not belong to that pass's dispose scope.
        var grown = torch.zeros([shape[0], shape[1], capacity, shape[3]], old.dtype, old.device).DetachFromDisposeScope();
        using (var target = grown.narrow(2, 0, Length))
        using (var source = old.narrow(2, 0, Length))
            target.copy_(source);
        old.Dispose();
        return grown;
    }

    /// <summary>Writes this step's key/value (B, nh, T, hs) after the cached ones; returns views of all positions.</summary>
    internal (Tensor Key, Tensor Value) Append(int layer, Tensor key, Tensor value)
    {
        long t = key.shape[2];
        using (var k = _keys[layer].narrow(2, Length, t)) k.copy_(key);
        using (var v = _values[layer].narrow(2, Length, t)) v.copy_(value);
        return (_keys[layer].narrow(2, 0, Length + t), _values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>Called once per forward pass, after every layer appended <paramref name="tokens"/> positions.</summary>
    internal void Advance(int tokens) => Length += tokens;

    /// <summary>Views (B, nh, Length, hs) of one layer's cached keys and values: HF's <c>present</c>.</summary>
    public (Tensor Key, Tensor Value) Layer(int layer) =>
        (_keys[layer].narrow(2, 0, Length), _values[layer].narrow(2, 0, Length));

    /// <summary>Reorders (or repeats) batch rows, as beam search does after choosing which beams survive.</summary>
    public void SelectRows(Tensor rowIndex)
    {
        for (int i = 0; i < _keys.Length; i++)
        {
            var k = _keys[i].index_select(0, rowIndex).DetachFromDisposeScope();
            var v = _values[i].index_select(0, rowIndex).DetachFromDisposeScope();
            _keys[i].Dispose(); _values[i].Dispose();
            _keys[i] = k; _values[i] = v;
        }
    }

    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}
