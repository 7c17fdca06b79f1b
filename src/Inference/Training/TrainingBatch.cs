using Gpt2Orleans.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>
/// Examples as tensors: ids (B, T) right-padded with the pad id, an attention mask where lengths differ, and labels:
/// per token (B, T), padding −100 (ignored by the losses), or one per example (B). <see cref="Tokens"/> counts real tokens.
/// </summary>
public sealed record TrainingBatch(Tensor InputIds, Tensor? AttentionMask, Tensor Labels, long Tokens) : IDisposable
{
    public static TrainingBatch Create(IReadOnlyList<TrainingExample> examples, long padId, bool labelsPerToken, Device device)
    {
        int rows = examples.Count, length = examples.Max(e => e.InputIds.Length);
        var ids = new long[rows * length];
        var mask = new long[rows * length];
        var labels = labelsPerToken ? new long[rows * length] : new long[rows];
        Array.Fill(ids, padId);
        if (labelsPerToken) Array.Fill(labels, Losses.IgnoreIndex);
        for (int r = 0; r < rows; r++)
        {
            var example = examples[r];
            example.InputIds.CopyTo(ids, r * length);
            Array.Fill(mask, 1L, r * length, example.InputIds.Length);
            if (labelsPerToken) example.Labels.CopyTo(labels, r * length);
            else labels[r] = example.Labels[0];
        }
        bool ragged = examples.Any(e => e.InputIds.Length != length);
        return new TrainingBatch(
            torch.tensor(ids, [rows, length], device: device),
            ragged ? torch.tensor(mask, [rows, length], device: device) : null,
            labelsPerToken ? torch.tensor(labels, [rows, length], device: device) : torch.tensor(labels, [rows], device: device),
            examples.Sum(e => (long)e.InputIds.Length));
    }

    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask?.Dispose();
        Labels.Dispose();
    }
}
