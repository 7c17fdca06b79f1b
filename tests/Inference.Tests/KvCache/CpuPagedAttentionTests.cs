using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.KvCache;

/// <summary>The in-place decode kernel equals softmax(q·Kᵀ·scale)·V over the same slots, computed by libtorch.</summary>
public sealed class CpuPagedAttentionTests
{
    [SkippableTheory]
    [InlineData(1, 12, 64, 200)]  // one sequence: heads split across cores
    [InlineData(5, 4, 16, 37)]    // head size below one 64-wide pass
    [InlineData(3, 2, 80, 17)]    // a 64-wide pass plus a 16-wide tail
    [InlineData(4, 3, 128, 1)]    // a single position
    public void Decode_equals_the_reference_attention(int sequences, int heads, int headDim, int maxLength) =>
        Check(sequences, heads, headDim, maxLength, ScalarType.Float32, 1e-5);

    /// <summary>A bf16 pool is widened as it is read and summed in float32: it equals float32 attention over the same bf16 values.</summary>
    [SkippableTheory]
    [InlineData(1, 12, 64, 200)]
    [InlineData(3, 2, 80, 17)]
    public void Decode_over_a_bf16_pool_equals_the_reference_attention(int sequences, int heads, int headDim, int maxLength) =>
        Check(sequences, heads, headDim, maxLength, ScalarType.BFloat16, 1e-2);

    private static void Check(int sequences, int heads, int headDim, int maxLength, ScalarType dtype, double tolerance)
    {
        using var scope = torch.NewDisposeScope();
        var random = new Random(sequences * 1000 + headDim);
        const int poolSlots = 512;
        var keys = torch.randn([poolSlots, heads, headDim]).to(dtype);
        var values = torch.randn([poolSlots, heads, headDim]).to(dtype);
        var query = torch.randn([sequences, heads, headDim]).to(dtype);
        // Scattered slots, as a block table gives after forks and evictions; lengths differ per sequence.
        var slots = Enumerable.Range(0, sequences)
            .Select(s => Enumerable.Range(0, Math.Max(1, maxLength - 3 * s)).Select(_ => (long)random.Next(poolSlots)).ToArray()).ToList();
        double scale = 1 / Math.Sqrt(headDim);

        if (!CpuPagedAttention.Applies(query, keys))
        {
            Assert.False(System.Runtime.Intrinsics.X86.Fma.IsSupported && System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated,
                "the kernel should apply to float32 on an AVX2 + FMA CPU");
            Skip.If(true, "no AVX2 + FMA here: the engine uses the gather path, covered by the paged forward tests");
        }
        var output = CpuPagedAttention.Decode(query, keys, values, slots, scale);
        Assert.Equal(dtype, output.dtype);
        (keys, values, query, output) = (keys.to(ScalarType.Float32), values.to(ScalarType.Float32), query.to(ScalarType.Float32), output.to(ScalarType.Float32));

        for (int s = 0; s < sequences; s++)
        {
            var index = torch.tensor(slots[s]);
            var k = keys.index_select(0, index).permute(1, 0, 2);                    // (nh, L, hs)
            var v = values.index_select(0, index).permute(1, 0, 2);
            var weights = (torch.matmul(k, query[s].unsqueeze(-1)).squeeze(-1) * scale).softmax(-1); // (nh, L)
            var expected = torch.matmul(weights.unsqueeze(1), v).squeeze(1);           // (nh, hs)
            TensorAssert.Close(expected, output[s], tolerance, tolerance, what: $"sequence {s}");
        }
    }
}
