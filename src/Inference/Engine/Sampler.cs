using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
        int vocab = (int)logits.size(1), width = (int)logits.size(0);
        // Greedy rows without processors take the argmax of their logits in place: one pass over all rows, no copy.
        var plain = Enumerable.Range(0, rows.Count).Where(i => rows[i].Sequence.Sampler is null && rows[i].Sequence.Processors.ProcessesNothing).ToArray();
        var processed = Enumerable.Range(0, rows.Count).Where(i => rows[i].Sequence.Sampler is null && !rows[i].Sequence.Processors.ProcessesNothing).ToArray();
        var sampling = Enumerable.Range(0, rows.Count).Where(i => rows[i].Sequence.Sampler is not null).ToArray();
        // Their argmax on the CPU is read straight from the logits' memory (no libtorch op, no copy: one stream's step
        // spent ~0.2 ms in libtorch's argmax and the host copy); elsewhere one argmax over all rows joins the one copy.
        bool onHost = logits.device_type == DeviceType.CPU && logits.dtype == ScalarType.Float32 && logits.is_contiguous();
        var parts = new List<Tensor>();
        if (plain.Length > 0 && !onHost) parts.Add(logits.argmax(-1));
        foreach (int i in processed.Concat(sampling))
        {
            // Each processed row gets an allocation of its own: libtorch's vectorised reductions round by the row's
            // memory alignment, and a row of a batch sits at another offset than the same row alone, so probabilities
            // (and a seeded draw) would differ in the last bit with what else is batched.
            var sequence = rows[i].Sequence;
            var own = sequence.Processors.Process([sequence.Tokens], logits.narrow(0, rows[i].Row, 1).clone());
            parts.Add(sequence.Sampler is null ? own.argmax(-1) : sequence.Processors.Warp([sequence.Tokens], own).softmax(-1));
        }
        // The one copy of the sampled tokens (ids as exact floats) and distributions.
        var host = parts.Count > 0 ? HostCopy.Float32([.. parts]) : [];

        var tokens = new int[rows.Count];
        int offset = plain.Length > 0 && !onHost ? width : 0;
        if (onHost)
        {
            var all = MemoryMarshal.Cast<byte, float>(logits.bytes);
            foreach (int i in plain) tokens[i] = ArgMax(all.Slice(rows[i].Row * vocab, vocab));
        }
        else foreach (int i in plain) tokens[i] = (int)host[rows[i].Row];
        for (int k = 0; k < processed.Length; k++) tokens[processed[k]] = (int)host[offset + k];
        offset += processed.Length;
        for (int k = 0; k < sampling.Length; k++)
            tokens[sampling[k]] = rows[sampling[k]].Sequence.Sampler!.Sample(host.AsSpan(offset + k * vocab, vocab));

        var logprobs = new TokenLogprob?[rows.Count];
        var asking = Enumerable.Range(0, rows.Count).Where(i => rows[i].Sequence.Request.Config.Logprobs is not null).ToArray();
        if (asking.Length > 0)
        {
            var tops = asking.Select(i => rows[i].Sequence.Request.Config.Logprobs!.Value).ToArray();
            var selected = logits.index_select(0, torch.tensor(asking.Select(i => (long)rows[i].Row).ToArray(), device: logits.device));
            var computed = LogprobCalculator.Compute(selected, asking.Select(i => tokens[i]).ToArray(), tops.Max(), tops);
            for (int k = 0; k < asking.Length; k++) logprobs[asking[k]] = computed[k];
        }
        return rows.Select((r, i) => new SampledToken(r.Sequence, tokens[i], logprobs[i])).ToList();
    }

    /// <summary>libtorch's argmax of one row: the first NaN if there is one (NaN counts as the largest), else the first of the largest values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector code: never the slow first tier
    internal static int ArgMax(ReadOnlySpan<float> row)
    {
        int n = row.Length, i = 0;
        var largest = Vector256.Create(float.NegativeInfinity);
        var unordered = Vector256<float>.Zero; // lanes that met a NaN
        for (; i + 8 <= n; i += 8)
        {
            var v = Vector256.Create(row.Slice(i, 8));
            unordered |= ~Vector256.Equals(v, v);
            largest = Vector256.Max(largest, v);
        }
        bool nan = unordered != Vector256<float>.Zero;
        float max = float.NegativeInfinity;
        for (int lane = 0; lane < 8; lane++) max = Math.Max(max, largest[lane]);
        for (; i < n; i++) { nan |= float.IsNaN(row[i]); max = Math.Max(max, row[i]); }
        if (nan)
        {
            for (i = 0; ; i++) if (float.IsNaN(row[i])) return i;
        }
        // The first value equal to the largest (-0 and +0 compare equal, as they do for libtorch).
        var target = Vector256.Create(max);
        for (i = 0; i + 8 <= n; i += 8)
            if (Vector256.Equals(Vector256.Create(row.Slice(i, 8)), target).ExtractMostSignificantBits() is var equal and not 0)
                return i + BitOperations.TrailingZeroCount(equal);
        for (; i < n; i++) if (row[i] == max) return i;
        return 0; // an empty row
    }
}
