using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// One sequence's part of a paged forward pass: its new tokens occupy rows [QueryStart, QueryStart + QueryLength)
/// of the flat batch; <see cref="ContextLength"/> positions before them are already in the pool.
/// </summary>
public sealed record PagedSequence(long Id, int QueryStart, int QueryLength, int ContextLength)
{
    public int TotalLength => ContextLength + QueryLength;
}

/// <summary>
/// The attention metadata of a paged forward pass (vLLM's attention metadata): for the flat batch of N new tokens
/// from several sequences, their positions, the slots their K/V are written to, and per sequence the slots of all
/// its positions to attend over. Built once per step, shared by every layer.
/// </summary>
public sealed class PagedBatch : IDisposable
{
    public IReadOnlyList<PagedSequence> Sequences { get; }
    public Tensor Positions { get; }       // (N)
    public Tensor WriteSlots { get; }      // (N)
    public IReadOnlyList<Tensor> ContextSlots { get; } // per sequence (TotalLength)
    public int TokenCount { get; }

    public PagedBatch(KvBlockPool pool, IReadOnlyList<PagedSequence> sequences)
    {
        Sequences = sequences;
        TokenCount = sequences.Sum(s => s.QueryLength);
        var positions = new long[TokenCount];
        var writes = new long[TokenCount];
        var contexts = new List<Tensor>();
        foreach (var s in sequences)
        {
            var slots = pool.Slots(s.Id, s.TotalLength);
            for (int i = 0; i < s.QueryLength; i++)
            {
                positions[s.QueryStart + i] = s.ContextLength + i;
                writes[s.QueryStart + i] = slots[s.ContextLength + i];
            }
            contexts.Add(torch.tensor(slots, device: pool.Device).DetachFromDisposeScope());
        }
        Positions = torch.tensor(positions, device: pool.Device).DetachFromDisposeScope();
        WriteSlots = torch.tensor(writes, device: pool.Device).DetachFromDisposeScope();
        ContextSlots = contexts;
    }

    public void Dispose()
    {
        Positions.Dispose();
        WriteSlots.Dispose();
        foreach (var t in ContextSlots) t.Dispose();
    }
}
