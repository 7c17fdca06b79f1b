using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Gpt2Orleans.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// Decode-step attention on the CPU that reads each sequence's K/V where they lie in the pool (PagedAttention's
/// idea): no gather, no padding, every cached byte read once. Why our own kernel: libtorch has no paged attention,
/// and gathering K/V into a contiguous batch first copied the whole KV of every sequence each step, which measured
/// slower than the weights themselves at 16 streams. For each sequence and head, scores over its slots 16 at a
/// time with the query held in registers, a vectorised softmax, then the weighted sum of V with the output held in
/// registers (both passes measured ~1.5× faster than one slot at a time); sequences (or, for a single one, ranges of
/// heads) are split across the cores (<see cref="KernelThreads"/>). AVX2 + FMA (256-bit vectors); float32 or bf16 queries and pools, in any pairing (bf16 widened as read, float32
/// sums); others use the gather path.
/// </summary>
public static unsafe class CpuPagedAttention
{
    public static bool Applies(Tensor query, Tensor keyStorage) =>
        Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported && query.device_type == DeviceType.CPU
        && query.dtype is ScalarType.Float32 or ScalarType.BFloat16 && Reads(keyStorage) && query.size(-1) % 8 == 0;

    /// <summary>Whether the kernel reads this pool storage: contiguous, float32 or bf16 (the fused decode step asks too).</summary>
    public static bool Reads(Tensor storage) => storage.dtype is ScalarType.Float32 or ScalarType.BFloat16 && storage.is_contiguous();

    /// <param name="query">(S, nh, hs): one query per decoding sequence</param>
    /// <param name="slots">per sequence, the slots of all its positions</param>
    /// <param name="scale">the factor applied to q·k (1/√hs, and 1/(layer+1) where the config asks)</param>
    /// <returns>(S, nh, hs) in the query's dtype</returns>
    public static Tensor Decode(Tensor query, Tensor keyStorage, Tensor valueStorage, IReadOnlyList<long[]> slots, double scale)
    {
        int sequences = (int)query.size(0), heads = (int)query.size(1), headDim = (int)query.size(2);
        using var q = query.to(ScalarType.Float32).contiguous();
        var output = torch.empty([sequences, heads, headDim], ScalarType.Float32);
        Attend((float*)TensorMemory.AddressOf(q), (float*)TensorMemory.AddressOf(output), sequences, heads, headDim, keyStorage, valueStorage, slots, null, scale);
        if (query.dtype == ScalarType.Float32) return output;
        using (output) return output.to(query.dtype);
    }

    /// <summary>
    /// The same over float32 memory: <paramref name="query"/> and <paramref name="output"/> (S, nh, hs) contiguous (the
    /// fused step). Query s attends over the first <paramref name="lengths"/>[s] of its slots (all of them when null):
    /// a prompt's rows share their sequence's slots, each up to its own position (causal attention).
    /// </summary>
    internal static void Attend(float* query, float* output, int sequences, int heads, int headDim, Tensor keyStorage, Tensor valueStorage,
        IReadOnlyList<long[]> slots, IReadOnlyList<int>? lengths, double scale) =>
        Attend(query, output, sequences, heads, headDim, TensorMemory.AddressOf(keyStorage), TensorMemory.AddressOf(valueStorage), keyStorage.dtype, slots, lengths, scale);

    /// <summary>The same over a pool's memory found before (<see cref="KvBlockPool.KeyAddress"/>): keys and values in <paramref name="dtype"/>.</summary>
    internal static void Attend(float* query, float* output, int sequences, int heads, int headDim, nint keys, nint values, ScalarType dtype,
        IReadOnlyList<long[]> slots, IReadOnlyList<int>? lengths, double scale)
    {
        nint kp = keys, vp = values, qp = (nint)query, op = (nint)output;
        bool bf16 = dtype == ScalarType.BFloat16;
        int workers = KernelThreads.Count;
        // One or few sequences: each core takes a contiguous range of each one's heads, so a slot's K (and V) for those
        // heads is one run of memory; one head per core in turn read 256 bytes every 3 KB and measured 0.48 → 0.27–0.43
        // ms per GPT-2 small step at 96 positions (its 7 MB of K/V read cold). The sums are the same either way.
        bool byHead = sequences < workers;
        int split = Math.Min(workers, heads); // head ranges per sequence
        int items = byHead ? sequences * split : sequences;
        KernelThreads.Run(Math.Min(workers, items), worker =>
        {
            for (int item = worker; item < items; item += workers)
            {
                int s = byHead ? item / split : item;
                int part = item % split;
                int h0 = byHead ? part * heads / split : 0, h1 = byHead ? (part + 1) * heads / split : heads;
                var work = new Work((byte*)kp, (byte*)vp, (float*)qp, (float*)op, slots[s], lengths?[s] ?? slots[s].Length, s, h0, h1, heads, headDim, (float)scale);
                if (bf16) Sequence<BFloat16Elements>(work); else Sequence<Float32Elements>(work);
            }
        });
    }


    /// <summary>Heads [h0, h1) of sequence s, over pools at <see cref="Keys"/> and <see cref="Values"/>.</summary>
    private readonly struct Work(byte* keys, byte* values, float* query, float* output, long[] slots, int length, int s, int h0, int h1,
        int heads, int headDim, float scale)
    {
        public readonly byte* Keys = keys, Values = values;
        public readonly float* Query = query, Output = output;
        public readonly long[] Slots = slots;
        public readonly int Length = length;
        public readonly int S = s, H0 = h0, H1 = h1, Heads = heads, HeadDim = headDim;
        public readonly float Scale = scale;
    }

    /// <summary>How eight consecutive cached elements are read as float32: as is, or bf16 widened (a bf16 is a float32's top half).</summary>
    private interface IElements
    {
        static abstract Vector256<float> Load(byte* storage, long index);
    }

    private readonly struct Float32Elements : IElements
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(byte* storage, long index) => Vector256.Load((float*)storage + index);
    }

    private readonly struct BFloat16Elements : IElements
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(byte* storage, long index) =>
            Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)storage + index), 16).AsSingle();
    }

    private const int SlotChunk = 16; // slots per pass over a head: its query (or output) stays in registers meanwhile

    /// <summary>Heads [h0, h1) of sequence s: scores, softmax, weighted sum of V.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sequence<T>(Work w) where T : struct, IElements
    {
        int length = w.Length, stride = w.Heads * w.HeadDim, width = w.H1 - w.H0;
        var scores = new float[width * length];
        var offsets = new long[length];
        for (int l = 0; l < length; l++) offsets[l] = w.Slots[l] * stride;
        for (int l0 = 0; l0 < length; l0 += SlotChunk)
        {
            int l1 = Math.Min(length, l0 + SlotChunk);
            for (int h = w.H0; h < w.H1; h++)
            {
                var row = scores.AsSpan((h - w.H0) * length, length);
                float* q = w.Query + ((long)w.S * w.Heads + h) * w.HeadDim;
                Scores<T>(w.Keys, h * w.HeadDim, q, offsets, l0, l1, w.HeadDim, row);
                for (int l = l0; l < l1; l++) row[l] *= w.Scale;
            }
        }
        var inverse = new float[width];
        for (int h = 0; h < width; h++) inverse[h] = 1f / ExpMinusMax(scores.AsSpan(h * length, length));
        for (int l0 = 0; l0 < length; l0 += SlotChunk)
        {
            int l1 = Math.Min(length, l0 + SlotChunk);
            for (int h = w.H0; h < w.H1; h++)
                WeightedValues<T>(w.Values, h * w.HeadDim, scores.AsSpan((h - w.H0) * length, length), inverse[h - w.H0], offsets, l0, l1,
                    w.HeadDim, w.Output + ((long)w.S * w.Heads + h) * w.HeadDim, first: l0 == 0);
        }
    }

    /// <summary>row[l] += q · k(l) for slots [l0, l1): 32 dims at a time with the query's four vectors held in registers, then 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores<T>(byte* keys, long head, float* q, long[] offsets, int l0, int l1, int headDim, Span<float> row)
        where T : struct, IElements
    {
        int d = 0;
        for (; d + 32 <= headDim; d += 32)
        {
            var q0 = Vector256.Load(q + d); var q1 = Vector256.Load(q + d + 8);
            var q2 = Vector256.Load(q + d + 16); var q3 = Vector256.Load(q + d + 24);
            for (int l = l0; l < l1; l++)
            {
                long k = offsets[l] + head + d;
                var a = Vector256.FusedMultiplyAdd(q0, T.Load(keys, k), q1 * T.Load(keys, k + 8));
                var b = Vector256.FusedMultiplyAdd(q2, T.Load(keys, k + 16), q3 * T.Load(keys, k + 24));
                row[l] += Vector256.Sum(a + b);
            }
        }
        for (; d < headDim; d += 8)
        {
            var q0 = Vector256.Load(q + d);
            for (int l = l0; l < l1; l++) row[l] += Vector256.Sum(q0 * T.Load(keys, offsets[l] + head + d));
        }
    }

    /// <summary>output (+)= Σ p(l)·v(l) over slots [l0, l1), p = row[l]·inverse; the output's vectors held in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightedValues<T>(byte* values, long head, Span<float> row, float inverse, long[] offsets, int l0, int l1, int headDim,
        float* output, bool first) where T : struct, IElements
    {
        int d = 0;
        for (; d + 32 <= headDim; d += 32)
        {
            float* o = output + d;
            Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default;
            if (!first) { o0 = Vector256.Load(o); o1 = Vector256.Load(o + 8); o2 = Vector256.Load(o + 16); o3 = Vector256.Load(o + 24); }
            for (int l = l0; l < l1; l++)
            {
                var p = Vector256.Create(row[l] * inverse);
                long v = offsets[l] + head + d;
                o0 = Vector256.FusedMultiplyAdd(p, T.Load(values, v), o0);
                o1 = Vector256.FusedMultiplyAdd(p, T.Load(values, v + 8), o1);
                o2 = Vector256.FusedMultiplyAdd(p, T.Load(values, v + 16), o2);
                o3 = Vector256.FusedMultiplyAdd(p, T.Load(values, v + 24), o3);
            }
            o0.Store(o); o1.Store(o + 8); o2.Store(o + 16); o3.Store(o + 24);
        }
        for (; d < headDim; d += 8)
        {
            var o0 = first ? default : Vector256.Load(output + d);
            for (int l = l0; l < l1; l++) o0 = Vector256.FusedMultiplyAdd(Vector256.Create(row[l] * inverse), T.Load(values, offsets[l] + head + d), o0);
            o0.Store(output + d);
        }
    }

    /// <summary>Replaces each score x by exp(x − max) (vectorised) and returns their sum: softmax's numerators and denominator.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float ExpMinusMax(Span<float> row)
    {
        int n = row.Length, full = n - n % 8;
        float max = float.NegativeInfinity;
        fixed (float* r = row)
        {
            var maxes = Vector256.Create(float.NegativeInfinity);
            for (int i = 0; i < full; i += 8) maxes = Vector256.Max(maxes, Vector256.Load(r + i));
            for (int i = 0; i < 8; i++) max = Math.Max(max, maxes[i]);
            for (int i = full; i < n; i++) max = Math.Max(max, r[i]);
            var m = Vector256.Create(max);
            var sums = Vector256<float>.Zero;
            for (int i = 0; i < full; i += 8)
            {
                var e = Vector256.Exp(Vector256.Load(r + i) - m);
                e.Store(r + i);
                sums += e;
            }
            float sum = Vector256.Sum(sums);
            for (int i = full; i < n; i++) { r[i] = MathF.Exp(r[i] - max); sum += r[i]; }
            return sum;
        }
    }
}
