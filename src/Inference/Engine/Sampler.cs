using Gpt2Orleans.Inference.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// Chooses every sampling sequence's next token for a whole step (vLLM's sampler): each row gets its own
/// sequence's logits processors in HF's order, then greedy rows take the argmax and sampling rows are warped,
/// softmaxed and drawn with the sequence's own seeded generator (on the host, so a seed gives the same tokens on
/// any device and in any batch). Parameters stay per row; the host sees the device twice at most per step: once
/// for all choices (argmax ids and the sampling rows' probabilities in one copy), once for log-probabilities.
/// </summary>
internal static class Sampler
{
    /// <param name="logits">(R, V) float32 raw logits</param>
    /// <param name="rows">each sequence to sample and the row of <paramref name="logits"/> it samples (forks share a row)</param>
    public static IReadOnlyList<SampledToken> Sample(Tensor logits, IReadOnlyList<(EngineSequence Sequence, int Row)> rows)
    {
        if (rows.Count == 0) return [];
        using var scope = torch.NewDisposeScope();
        int vocab = (int)logits.shape[1];
        var raw = logits.index_select(0, torch.tensor(rows.Select(r => (long)r.Row).ToArray(), device: logits.device)); // (N, V), a copy
        var scores = raw;
        if (rows.Any(r => r.Sequence.Sampler is null && !r.Sequence.Processors.ProcessesNothing)) scores = raw.clone();
        for (int i = 0; i < rows.Count; i++)
        {
            var sequence = rows[i].Sequence;
            if (sequence.Sampler is not null || sequence.Processors.ProcessesNothing) continue; // greedy rows are processed in place here
            var row = scores.narrow(0, i, 1);
            var processed = sequence.Processors.Process([sequence.Tokens], row);
            if (!ReferenceEquals(processed, row)) row.copy_(processed);
        }
        var greedy = Enumerable.Range(0, rows.Count).Where(i => rows[i].Sequence.Sampler is null).ToArray();
        var sampling = Enumerable.Range(0, rows.Count).Where(i => rows[i].Sequence.Sampler is not null).ToArray();
        var parts = new List<Tensor>();
        if (greedy.Length > 0) parts.Add(Select(scores, greedy).argmax(-1).to(ScalarType.Float32));
        foreach (int i in sampling)
        {
            // Each row is warped and softmaxed in its own allocation: libtorch's vectorised reductions round by the
            // row's memory alignment, and a row of a batch sits at another offset than the same row alone, so the
            // probabilities (and a seeded draw) would differ in the last bit with what else is batched.
            var sequence = rows[i].Sequence;
            var own = sequence.Processors.Process([sequence.Tokens], logits.narrow(0, rows[i].Row, 1).clone());
            parts.Add(sequence.Processors.Warp([sequence.Tokens], own).softmax(-1).flatten());
        }
        var host = torch.cat(parts, 0).cpu().data<float>().ToArray();

        var tokens = new int[rows.Count];
        for (int k = 0; k < greedy.Length; k++) tokens[greedy[k]] = (int)host[k];
        for (int k = 0; k < sampling.Length; k++)
            tokens[sampling[k]] = rows[sampling[k]].Sequence.Sampler!.Sample(host.AsSpan(greedy.Length + k * vocab, vocab));

        var logprobs = new TokenLogprob?[rows.Count];
        var asking = Enumerable.Range(0, rows.Count).Where(i => rows[i].Sequence.Request.Config.Logprobs is not null).ToArray();
        if (asking.Length > 0)
        {
            var tops = asking.Select(i => rows[i].Sequence.Request.Config.Logprobs!.Value).ToArray();
            var computed = LogprobCalculator.Compute(Select(raw, asking), asking.Select(i => tokens[i]).ToArray(), tops.Max(), tops);
            for (int k = 0; k < asking.Length; k++) logprobs[asking[k]] = computed[k];
        }
        return rows.Select((r, i) => new SampledToken(r.Sequence, tokens[i], logprobs[i])).ToList();
    }

    private static Tensor Select(Tensor rows, int[] indices) =>
        indices.Length == rows.shape[0] ? rows : rows.index_select(0, torch.tensor(indices.Select(i => (long)i).ToArray(), device: rows.device));
}
