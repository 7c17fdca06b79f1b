using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// Decode-step attention on the CPU that reads each sequence's K/V where they lie in the pool (PagedAttention's
/// idea): no gather, no padding, every cached byte read once. Why our own kernel: libtorch has no paged attention,
/// and gathering K/V into a contiguous batch first copied the whole KV of every sequence each step, which measured
/// slower than the weights themselves at 16 streams. For each sequence, scores over its slots for all heads at
/// once (each slot's heads are contiguous), a softmax per head, then the weighted sum of V; sequences (or, for a
/// single one, heads) are split across the cores. Float32 pools only; others use the gather path.
/// </summary>
public static unsafe class CpuPagedAttention
{
    public static bool Applies(Tensor query, Tensor keyStorage) =>
        Vector512.IsHardwareAccelerated && query.device_type == DeviceType.CPU
        && query.dtype == ScalarType.Float32 && keyStorage.dtype == ScalarType.Float32
        && keyStorage.is_contiguous() && query.shape[^1] % 16 == 0;

    /// <param name="query">(S, nh, hs): one query per decoding sequence</param>
    /// <param name="slots">per sequence, the slots of all its positions</param>
    /// <param name="scale">the factor applied to q·k (1/√hs, and 1/(layer+1) where the config asks)</param>
    /// <returns>(S, nh, hs)</returns>
    public static Tensor Decode(Tensor query, Tensor keyStorage, Tensor valueStorage, IReadOnlyList<long[]> slots, double scale)
    {
        int sequences = (int)query.shape[0], heads = (int)query.shape[1], headDim = (int)query.shape[2];
        var q = query.contiguous();
        var output = torch.empty([sequences, heads, headDim], ScalarType.Float32);
        using var keys = keyStorage.storage<float>();
        using var values = valueStorage.storage<float>();
        nint kp = keys.data_ptr(), vp = values.data_ptr();
        nint qp = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(MemoryMarshal.Cast<byte, float>(q.bytes)));
        nint op = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(MemoryMarshal.Cast<byte, float>(output.bytes)));
        int workers = Environment.ProcessorCount;
        bool byHead = sequences < workers; // one or few sequences: split their heads instead
        int items = byHead ? sequences * heads : sequences;
        Parallel.For(0, Math.Min(workers, items), new ParallelOptions { MaxDegreeOfParallelism = workers }, worker =>
        {
            for (int item = worker; item < items; item += workers)
            {
                int s = byHead ? item / heads : item;
                int h0 = byHead ? item % heads : 0, h1 = byHead ? h0 + 1 : heads;
                Sequence((float*)kp, (float*)vp, (float*)qp, (float*)op, slots[s], s, h0, h1, heads, headDim, (float)scale);
            }
        });
        if (!ReferenceEquals(q, query)) q.Dispose();
        return output;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sequence(float* keys, float* values, float* query, float* output, long[] slots, int s, int h0, int h1,
        int heads, int headDim, float scale)
    {
        int length = slots.Length, stride = heads * headDim, width = h1 - h0;
        var scores = new float[width * length];
        for (int l = 0; l < length; l++)
        {
            float* key = keys + slots[l] * stride;
            for (int h = h0; h < h1; h++)
            {
                float* q = query + ((long)s * heads + h) * headDim, k = key + h * headDim;
                var acc = Vector512<float>.Zero;
                for (int d = 0; d < headDim; d += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(q + d), Vector512.Load(k + d), acc);
                scores[(h - h0) * length + l] = Vector512.Sum(acc) * scale;
            }
        }
        var inverse = new float[width];
        for (int h = 0; h < width; h++)
        {
            var row = scores.AsSpan(h * length, length);
            float max = float.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            float sum = 0;
            for (int l = 0; l < length; l++) { row[l] = MathF.Exp(row[l] - max); sum += row[l]; }
            inverse[h] = 1f / sum;
        }
        for (int h = h0; h < h1; h++) new Span<float>(output + ((long)s * heads + h) * headDim, headDim).Clear();
        for (int l = 0; l < length; l++)
        {
            float* value = values + slots[l] * stride;
            for (int h = h0; h < h1; h++)
            {
                var p = Vector512.Create(scores[(h - h0) * length + l] * inverse[h - h0]);
                float* o = output + ((long)s * heads + h) * headDim, v = value + h * headDim;
                for (int d = 0; d < headDim; d += 16) Vector512.FusedMultiplyAdd(p, Vector512.Load(v + d), Vector512.Load(o + d)).Store(o + d);
            }
        }
    }
}
