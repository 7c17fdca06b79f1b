using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// One sequence's part of a paged forward pass: its new tokens occupy rows [QueryStart, QueryStart + QueryLength)
/// of the flat batch; <see cref="ContextLength"/> positions before them are already in the pool.
/// </summary>
internal sealed record PagedSequence(long Id, int QueryStart, int QueryLength, int ContextLength)
{
    public int TotalLength => ContextLength + QueryLength;
}

/// <summary>
/// The attention metadata of a paged forward pass (vLLM's attention metadata): for the flat batch of N new tokens
/// from several sequences, their positions, the slots their K/V are written to, and per sequence the slots of all
/// its positions to attend over. Built once per step, shared by every layer.
/// </summary>
internal sealed class PagedBatch : IDisposable
{
    public IReadOnlyList<PagedSequence> Sequences { get; }
    public Tensor Positions { get; }       // (N)
    public Tensor WriteSlots { get; }      // (N)
    public long[] HostWriteSlots { get; }  // the same, on the host
    public long[] HostPositions { get; }   // each token's position, on the host
    public IReadOnlyList<Tensor> ContextSlots { get; } // per sequence (TotalLength)
    public IReadOnlyList<long[]> HostContextSlots { get; } // the same, on the host
    public int TokenCount { get; }
    /// <summary>The sequences with one new token (decoding), attended to together; null when there are none.</summary>
    public DecodeGroup? Decode { get; }

    /// <summary>
    /// Decoding sequences attend in one kernel call per layer: their K/V slots padded to the longest context
    /// (S · L, the padding pointing at a real slot and masked out) and the additive mask (S, 1, 1, L).
    /// </summary>
    public sealed record DecodeGroup(int[] SequenceIndices, Tensor Rows, Tensor Slots, Tensor Bias, int MaxLength, long[][] HostSlots);

    public PagedBatch(KvBlockPool pool, BlockAllocator allocator, IReadOnlyList<PagedSequence> sequences)
    {
        Sequences = sequences;
        TokenCount = sequences.Sum(s => s.QueryLength);
        var positions = new long[TokenCount];
        var writes = new long[TokenCount];
        var contexts = new List<Tensor>();
        var hostContexts = new List<long[]>();
        foreach (var s in sequences)
        {
            var slots = allocator.Slots(s.Id, s.TotalLength);
            for (int i = 0; i < s.QueryLength; i++)
            {
                positions[s.QueryStart + i] = s.ContextLength + i;
                writes[s.QueryStart + i] = slots[s.ContextLength + i];
            }
            contexts.Add(torch.tensor(slots, device: pool.Device).DetachFromDisposeScope());
            hostContexts.Add(slots);
        }
        Decode = CreateDecodeGroup(pool, sequences, hostContexts);
        Positions = torch.tensor(positions, device: pool.Device).DetachFromDisposeScope();
        WriteSlots = torch.tensor(writes, device: pool.Device).DetachFromDisposeScope();
        HostWriteSlots = writes;
        HostPositions = positions;
        ContextSlots = contexts;
        HostContextSlots = hostContexts;
    }

    private static DecodeGroup? CreateDecodeGroup(KvBlockPool pool, IReadOnlyList<PagedSequence> sequences, IReadOnlyList<long[]> contextSlots)
    {
        var indices = Enumerable.Range(0, sequences.Count).Where(i => sequences[i].QueryLength == 1).ToArray();
        if (indices.Length == 0) return null;
        int maxLength = indices.Max(i => sequences[i].TotalLength);
        var slots = new long[indices.Length * maxLength];
        var bias = new float[indices.Length * maxLength];
        var hostSlots = new long[indices.Length][];
        for (int k = 0; k < indices.Length; k++)
        {
            var own = hostSlots[k] = contextSlots[indices[k]];
            for (int p = 0; p < maxLength; p++)
            {
                bool real = p < own.Length;
                slots[k * maxLength + p] = real ? own[p] : own[0];
                bias[k * maxLength + p] = real ? 0 : float.MinValue;
            }
        }
        var rows = indices.Select(i => (long)sequences[i].QueryStart).ToArray();
        return new DecodeGroup(indices,
            torch.tensor(rows, device: pool.Device).DetachFromDisposeScope(),
            torch.tensor(slots, device: pool.Device).DetachFromDisposeScope(),
            torch.tensor(bias, [indices.Length, 1, 1, maxLength], device: pool.Device).to(pool.DType).DetachFromDisposeScope(),
            maxLength, hostSlots);
    }

    public void Dispose()
    {
        if (Decode is { } d) { d.Rows.Dispose(); d.Slots.Dispose(); d.Bias.Dispose(); }
        Positions.Dispose();
        WriteSlots.Dispose();
        foreach (var t in ContextSlots) t.Dispose();
    }
}
