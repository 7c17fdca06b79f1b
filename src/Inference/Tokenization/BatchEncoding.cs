using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tokenization;

/// <summary>Which side padding goes on: left for generation (new tokens follow the prompt), right for classification.</summary>
public enum PaddingSide { Left, Right }

/// <summary>Prompts padded to one length: ids and the 1/0 attention mask (1 = real token).</summary>
public sealed record BatchEncoding(long[][] InputIds, long[][] AttentionMask)
{
    public int BatchSize => InputIds.Length;
    public int Length => InputIds.Length == 0 ? 0 : InputIds[0].Length;

    public static BatchEncoding Pad(IReadOnlyList<IReadOnlyList<int>> sequences, int padTokenId, PaddingSide side)
    {
        int length = sequences.Count == 0 ? 0 : sequences.Max(s => s.Count);
        var ids = new long[sequences.Count][];
        var mask = new long[sequences.Count][];
        for (int i = 0; i < sequences.Count; i++)
        {
            ids[i] = Enumerable.Repeat((long)padTokenId, length).ToArray();
            mask[i] = new long[length];
            int offset = side == PaddingSide.Left ? length - sequences[i].Count : 0;
            for (int j = 0; j < sequences[i].Count; j++)
            {
                ids[i][offset + j] = sequences[i][j];
                mask[i][offset + j] = 1;
            }
        }
        return new BatchEncoding(ids, mask);
    }

    /// <summary>HF generate's position ids: cumsum(attention_mask) − 1, with padding positions set to 1.</summary>
    public long[][] PositionIds() => AttentionMask.Select(m =>
    {
        long running = -1;
        return m.Select(v => { running += v; return v == 0 ? 1 : running; }).ToArray();
    }).ToArray();

    public Tensor InputIdsTensor(Device? device = null) => ToTensor(InputIds, device);
    public Tensor AttentionMaskTensor(Device? device = null) => ToTensor(AttentionMask, device);

    public static Tensor ToTensor(long[][] rows, Device? device = null)
    {
        int width = rows.Length == 0 ? 0 : rows[0].Length;
        var flat = new long[rows.Length * width];
        for (int i = 0; i < rows.Length; i++) rows[i].CopyTo(flat, i * width);
        return torch.tensor(flat, [rows.Length, width], ScalarType.Int64, device);
    }
}
