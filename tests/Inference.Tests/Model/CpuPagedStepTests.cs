using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Model;

/// <summary>
/// The fused step (every block of a step of few tokens in our own kernels) equals the per-block libtorch forward: the
/// logits and the K/V it leaves in the pool, for several sequences of different lengths, over several decode steps,
/// a prefill of them all at once, and a step that mixes a prompt chunk with decodes.
/// </summary>
public sealed class CpuPagedStepTests
{
    internal static readonly Gpt2Config Small = Gpt2Config.Default with
    {
        NEmbd = 64, NHead = 4, NLayer = 3, NPositions = 64, VocabSize = 300, BosTokenId = 0, EosTokenIds = [0],
    };

    private const int BlockSize = 4, Blocks = 48;

    /// <summary>A pool and its allocator holding three sequences of 5, 9 and 2 prompt tokens, prefilled together (by the per-block path unless told).</summary>
    internal sealed class Run : IDisposable
    {
        public readonly KvBlockPool Pool;
        public readonly BlockAllocator Allocator = new(Blocks, BlockSize);
        public readonly List<List<int>> Tokens = [[5, 17, 3, 99, 42], [1, 2, 3, 4, 5, 6, 7, 8, 9], [250, 251]];

        /// <summary>The prefill's logits for every row, and whether the fused path computed them.</summary>
        public readonly Tensor PrefillLogits;
        public readonly bool PrefillFused;

        /// <param name="kvDType">the pool's dtype (null: the model's)</param>
        public Run(Gpt2LMHeadModel model, KernelPolicy? prefill = null, ScalarType? kvDType = null)
        {
            Pool = new KvBlockPool(model.Config, Blocks, BlockSize, kvDType ?? model.DType, model.Device);
            var parts = new List<PagedSequence>();
            var ids = new List<long>();
            for (int s = 0; s < Tokens.Count; s++)
            {
                Allocator.TryAllocate(s, [.. Tokens[s]], "t");
                parts.Add(new PagedSequence(s, ids.Count, Tokens[s].Count, 0));
                ids.AddRange(Tokens[s].Select(t => (long)t));
            }
            using var batch = new PagedBatch(Pool, Allocator, parts);
            PrefillFused = CpuPagedStep.Applies(model.transformer, batch, Pool, prefill ?? KernelPolicy.Dense);
            PrefillLogits = model.forwardPaged(torch.tensor(ids.ToArray()), batch, Pool, [.. Enumerable.Range(0, ids.Count).Select(i => (long)i)],
                prefill ?? KernelPolicy.Dense);
            for (int s = 0; s < Tokens.Count; s++) Allocator.MarkComputed(s, Tokens[s].Count);
        }

        /// <summary>One decode step of every sequence; returns its logits (S, V) and whether the fused path served it.</summary>
        public (Tensor Logits, bool Fused) Decode(Gpt2LMHeadModel model, int step, KernelPolicy policy) => Step(model, step, policy, firstChunk: 1);

        /// <summary>A step in which the first sequence adds <paramref name="firstChunk"/> tokens and the others one each; the logits of every row.</summary>
        public (Tensor Logits, bool Fused) Step(Gpt2LMHeadModel model, int step, KernelPolicy policy, int firstChunk)
        {
            var parts = new List<PagedSequence>();
            var ids = new List<long>();
            for (int s = 0; s < Tokens.Count; s++)
            {
                int count = s == 0 ? firstChunk : 1, start = ids.Count;
                for (int i = 0; i < count; i++)
                {
                    int token = (37 * step + 11 * s + 5 * i) % 300;
                    Allocator.TryAppend(s, token, out _);
                    ids.Add(token);
                }
                parts.Add(new PagedSequence(s, start, count, Tokens[s].Count));
            }
            using var batch = new PagedBatch(Pool, Allocator, parts);
            bool fused = CpuPagedStep.Applies(model.transformer, batch, Pool, policy);
            var logits = model.forwardPaged(torch.tensor(ids.ToArray()), batch, Pool, [.. Enumerable.Range(0, ids.Count).Select(i => (long)i)], policy);
            foreach (var part in parts)
            {
                Tokens[(int)part.Id].AddRange(ids.Skip(part.QueryStart).Take(part.QueryLength).Select(t => (int)t));
                Allocator.MarkComputed(part.Id, Tokens[(int)part.Id].Count);
            }
            return (logits, fused);
        }

        public void Dispose() => Pool.Dispose();
    }

    [SkippableTheory]
    [InlineData("gelu_new", 1e-4)]
    [InlineData("gelu_fast", 1e-4)]
    [InlineData("relu", 1e-4)]
    public void Fused_decode_steps_equal_the_per_block_forward_in_float32(string activation, double tolerance)
    {
        Skip.IfNot(CpuMatVec.Supported, "the fused decode step needs AVX2 + FMA");
        using var scope = torch.NewDisposeScope();
        using var model = Gpt2LMHeadModel.CreateRandom(Small with { ActivationFunction = activation }, seed: 3);
        using var fused = new Run(model);
        using var reference = new Run(model);
        for (int step = 0; step < 4; step++)
        {
            var (actual, wasFused) = fused.Decode(model, step, KernelPolicy.Fast);
            var (expected, referenceFused) = reference.Decode(model, step, KernelPolicy.Dense);
            Assert.True(wasFused, "the fused path did not serve a decode-only step");
            Assert.False(referenceFused);
            TensorAssert.Close(expected, actual, tolerance, tolerance, what: $"{activation} logits, step {step}");
        }
        AssertSameKeysAndValues(reference, fused);
    }

    [SkippableFact]
    public void A_fused_prefill_and_a_step_mixing_a_prompt_chunk_with_decodes_equal_the_per_block_forward()
    {
        Skip.IfNot(CpuMatVec.Supported, "the fused step needs AVX2 + FMA");
        using var scope = torch.NewDisposeScope();
        using var model = Gpt2LMHeadModel.CreateRandom(Small, seed: 5);
        using var fused = new Run(model, KernelPolicy.Fast);
        using var reference = new Run(model);
        Assert.True(fused.PrefillFused, "the fused path did not serve a 16-token prefill");
        TensorAssert.Close(reference.PrefillLogits, fused.PrefillLogits, 1e-4, 1e-4, what: "prefill logits");
        for (int step = 0; step < 3; step++)
        {
            var (actual, wasFused) = fused.Step(model, step, KernelPolicy.Fast, firstChunk: 3);
            var (expected, _) = reference.Step(model, step, KernelPolicy.Dense, firstChunk: 3);
            Assert.True(wasFused, "the fused path did not serve a mixed step");
            TensorAssert.Close(expected, actual, 1e-4, 1e-4, what: $"mixed step {step} logits");
        }
        AssertSameKeysAndValues(reference, fused);
    }

    /// <summary>The K/V the two runs left in their pools, layer by layer.</summary>
    private static void AssertSameKeysAndValues(Run reference, Run fused)
    {
        for (int layer = 0; layer < Small.NLayer; layer++)
        {
            TensorAssert.Close(reference.Pool.KeyStorage(layer), fused.Pool.KeyStorage(layer), 1e-5, 1e-5, what: $"keys of layer {layer}");
            TensorAssert.Close(reference.Pool.ValueStorage(layer), fused.Pool.ValueStorage(layer), 1e-5, 1e-5, what: $"values of layer {layer}");
        }
    }

    [SkippableFact]
    public void Fused_bf16_decode_stays_as_close_to_float32_as_the_per_block_bf16_forward()
    {
        Skip.IfNot(CpuMatVec.Supported, "the fused decode step needs AVX2 + FMA");
        using var scope = torch.NewDisposeScope();
        using var exact = Gpt2LMHeadModel.CreateRandom(Small, seed: 3);
        using var bf16 = Gpt2LMHeadModel.CreateRandom(Small, 3, new ModelLoadOptions { DType = ScalarType.BFloat16 });
        using var expected = new Run(exact);
        using var fused = new Run(bf16);
        using var perBlock = new Run(bf16);
        for (int step = 0; step < 4; step++)
        {
            var reference = expected.Decode(exact, step, KernelPolicy.Dense).Logits;
            var (actual, wasFused) = fused.Decode(bf16, step, KernelPolicy.Fast);
            var libtorch = perBlock.Decode(bf16, step, KernelPolicy.Dense).Logits;
            Assert.True(wasFused);
            AssertBf16AsCloseAsLibtorch(reference, actual, libtorch, $"step {step}");
        }
    }

    /// <summary>A fused bf16 result is bf16 and at most twice as far from float32 as libtorch's per-block bf16 forward (or 0.05).</summary>
    private static void AssertBf16AsCloseAsLibtorch(Tensor reference, Tensor fused, Tensor libtorch, string what)
    {
        Assert.Equal(ScalarType.BFloat16, fused.dtype);
        double fusedError = TensorAssert.MaxDiff(reference, fused.to(ScalarType.Float32));
        double libtorchError = TensorAssert.MaxDiff(reference, libtorch.to(ScalarType.Float32));
        Assert.True(fusedError <= Math.Max(2 * libtorchError, 0.05), $"{what}: fused bf16 |Δ| {fusedError} against libtorch bf16's {libtorchError}");
    }

    /// <summary>
    /// From <see cref="KernelPolicy.NativeBFloat16GemmRows"/> rows on a CPU with bf16 dot products, the fused step's bf16
    /// products run in libtorch's bf16 GEMM (its inputs rounded to bf16): a 16-token prefill and steps mixing a 14-token
    /// chunk with two decodes stay as close to float32 as libtorch's own per-block bf16 forward.
    /// </summary>
    [SkippableFact]
    public void Fused_bf16_steps_of_many_rows_take_libtorchs_bf16_gemm_and_stay_as_close_to_float32_as_the_per_block_forward()
    {
        Skip.IfNot(CpuMatVec.Supported, "the fused step needs AVX2 + FMA");
        Skip.IfNot(SlicedFloat32Linear.NativeBFloat16, "no AVX512_BF16 here: the mat-vec kernel serves every bf16 step of few rows");
        Assert.True(KernelPolicy.Fast.NativeBFloat16Gemm(ScalarType.BFloat16, 16));
        Assert.False(KernelPolicy.Fast.NativeBFloat16Gemm(ScalarType.BFloat16, 15));
        Assert.False(KernelPolicy.Fast.NativeBFloat16Gemm(ScalarType.Float32, 64));
        using var scope = torch.NewDisposeScope();
        using var exact = Gpt2LMHeadModel.CreateRandom(Small, seed: 3);
        using var bf16 = Gpt2LMHeadModel.CreateRandom(Small, 3, new ModelLoadOptions { DType = ScalarType.BFloat16 });
        using var expected = new Run(exact);
        using var fused = new Run(bf16, KernelPolicy.Fast);
        using var perBlock = new Run(bf16);
        Assert.True(fused.PrefillFused, "the fused path did not serve a 16-token bf16 prefill");
        AssertBf16AsCloseAsLibtorch(expected.PrefillLogits, fused.PrefillLogits, perBlock.PrefillLogits, "prefill");
        for (int step = 0; step < 3; step++)
        {
            var reference = expected.Step(exact, step, KernelPolicy.Dense, firstChunk: 14).Logits;
            var (actual, wasFused) = fused.Step(bf16, step, KernelPolicy.Fast, firstChunk: 14);
            var libtorch = perBlock.Step(bf16, step, KernelPolicy.Dense, firstChunk: 14).Logits;
            Assert.True(wasFused, "the fused path did not serve a 16-row bf16 step");
            AssertBf16AsCloseAsLibtorch(reference, actual, libtorch, $"mixed step {step}");
        }
    }

    /// <summary>
    /// The fused step finds the parameters' memory once per model (<see cref="FusedStepParameters"/>): values changed in
    /// place between steps are read afresh, and weights replaced (quantized here) are found again.
    /// </summary>
    [SkippableFact]
    public void Fused_steps_see_parameters_changed_in_place_and_weights_replaced_between_steps()
    {
        Skip.IfNot(CpuMatVec.Supported, "the fused decode step needs AVX2 + FMA");
        using var scope = torch.NewDisposeScope();
        using var model = Gpt2LMHeadModel.CreateRandom(Small, seed: 9);
        using var fused = new Run(model, KernelPolicy.Fast);
        using var reference = new Run(model);
        var before = fused.Decode(model, 0, KernelPolicy.Fast);
        Assert.True(before.Fused);
        TensorAssert.Close(reference.Decode(model, 0, KernelPolicy.Dense).Logits, before.Logits, 1e-4, 1e-4, what: "first step");
        using (torch.no_grad())
        {
            model.transformer.h[1].ln_2.weight.mul_(3);
            model.transformer.h[2].mlp.c_fc.bias.add_(0.5);
            model.transformer.h[0].attn.c_attn.WeightOutIn!.mul_(-1);
        }
        var changed = fused.Decode(model, 1, KernelPolicy.Fast);
        var changedReference = reference.Decode(model, 1, KernelPolicy.Dense).Logits;
        TensorAssert.Close(changedReference, changed.Logits, 1e-4, 1e-4, what: "after changes in place");
        model.Quantize(Inference.Quantization.QuantizationConfig.Parse("int8")!);
        var quantized = fused.Decode(model, 2, KernelPolicy.Fast);
        Assert.True(quantized.Fused);
        // The integer kernel rounds a few rows' inputs to int8, libtorch's product over dequantized weights does not.
        TensorAssert.Close(reference.Decode(model, 2, KernelPolicy.Dense).Logits, quantized.Logits, 0.05, 0.05, what: "after quantizing");
    }

    /// <summary>The fused step looks the embeddings up itself: it refuses token ids outside the vocabulary with the per-block forward's error, before writing any K/V.</summary>
    [SkippableFact]
    public void A_fused_step_refuses_token_ids_outside_the_vocabulary_as_the_per_block_forward_does()
    {
        Skip.IfNot(CpuMatVec.Supported, "the fused step needs AVX2 + FMA");
        using var scope = torch.NewDisposeScope();
        using var model = Gpt2LMHeadModel.CreateRandom(Small, seed: 3);
        using var run = new Run(model);
        Assert.NotNull(run.Allocator.TryAllocate(7, [1, 2], "t"));
        foreach (long bad in new long[] { Small.VocabSize, -1 })
        {
            string? expected = null;
            foreach (var policy in new[] { KernelPolicy.Dense, KernelPolicy.Fast })
            {
                using var batch = new PagedBatch(run.Pool, run.Allocator, [new PagedSequence(7, 0, 2, 0)]);
                Assert.Equal(policy == KernelPolicy.Fast, CpuPagedStep.Applies(model.transformer, batch, run.Pool, policy));
                var error = Assert.Throws<ArgumentOutOfRangeException>(() => model.forwardPaged(torch.tensor(new[] { 1L, bad }), batch, run.Pool, [1L], policy));
                Assert.Contains($"token id {bad} is outside the vocabulary", error.Message);
                expected ??= error.Message;
                Assert.Equal(expected, error.Message);
            }
        }
    }

    /// <summary>The rounding of activations and K/V to bf16 is libtorch's, bit for bit: ties to even, NaN, infinities, subnormals, a ragged tail.</summary>
    [Fact]
    public unsafe void Rounding_to_bf16_gives_libtorchs_bits()
    {
        using var scope = torch.NewDisposeScope();
        uint[] special = [0x3F808000, 0x3F818000, 0x3F80FFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001,
            0x7F800001, 0x00000001, 0x00008000, 0x00018000, 0x80000000, 0x00000000, 0x807FFFFF];
        var random = new Random(11);
        var values = special.Select(BitConverter.UInt32BitsToSingle)
            .Concat(Enumerable.Range(0, 987).Select(_ => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)))).ToArray(); // 1003: not a multiple of 16
        var actual = new ushort[values.Length];
        fixed (float* source = values) fixed (ushort* destination = actual) CpuPagedStep.ToBFloat16(source, destination, values.Length);
        using var expected = torch.tensor(values).to(ScalarType.BFloat16);
        var expectedBits = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(expected.bytes).ToArray();
        for (int i = 0; i < values.Length; i++)
            if (float.IsNaN(values[i])) Assert.True((actual[i] & 0x7F80) == 0x7F80 && (actual[i] & 0x7F) != 0, $"value {i}: NaN became 0x{actual[i]:X4}");
            else Assert.True(expectedBits[i] == actual[i], $"value {i} (0x{BitConverter.SingleToUInt32Bits(values[i]):X8}): 0x{actual[i]:X4}, libtorch 0x{expectedBits[i]:X4}");
    }

    [SkippableTheory]
    [InlineData(ScalarType.Float32, ScalarType.BFloat16)]
    [InlineData(ScalarType.BFloat16, ScalarType.Float32)]
    public void A_kv_cache_in_another_dtype_than_the_model_is_written_and_read_alike_by_the_fused_and_per_block_paths(ScalarType compute, ScalarType kv)
    {
        Skip.IfNot(CpuMatVec.Supported, "the fused decode step needs AVX2 + FMA");
        using var scope = torch.NewDisposeScope();
        using var exact = Gpt2LMHeadModel.CreateRandom(Small, seed: 7);
        using var model = Gpt2LMHeadModel.CreateRandom(Small, 7, new ModelLoadOptions { DType = compute });
        using var expected = new Run(exact);
        using var fused = new Run(model, KernelPolicy.Fast, kv);
        using var perBlock = new Run(model, KernelPolicy.Dense, kv);
        Assert.Equal(kv, fused.Pool.DType);
        Assert.True(fused.PrefillFused);
        for (int step = 0; step < 4; step++)
        {
            var reference = expected.Decode(exact, step, KernelPolicy.Dense).Logits;
            var (actual, wasFused) = fused.Decode(model, step, KernelPolicy.Fast);
            var libtorch = perBlock.Decode(model, step, KernelPolicy.Dense).Logits;
            Assert.True(wasFused, "the fused path did not serve a decode step over a pool of another dtype");
            Assert.Equal(compute, actual.dtype);
            // Both paths attend over the same rounded K/V: they agree as closely as the model's dtype lets them, and
            // rounding K/V to bf16 costs little against float32 throughout.
            double fusedError = TensorAssert.MaxDiff(reference, actual.to(ScalarType.Float32));
            double libtorchError = TensorAssert.MaxDiff(reference, libtorch.to(ScalarType.Float32));
            Assert.True(libtorchError < 0.05, $"step {step}: per-block |Δ| {libtorchError} against float32 throughout");
            Assert.True(fusedError <= Math.Max(2 * libtorchError, 0.01), $"step {step}: fused |Δ| {fusedError} against the per-block path's {libtorchError}");
        }
        for (int layer = 0; layer < Small.NLayer; layer++)
        {
            Assert.Equal(kv, perBlock.Pool.KeyStorage(layer).dtype);
            double tolerance = compute == ScalarType.Float32 ? 1e-2 : 5e-2; // one bf16 rounding of K/V either way
            TensorAssert.Close(perBlock.Pool.KeyStorage(layer).to(ScalarType.Float32), fused.Pool.KeyStorage(layer).to(ScalarType.Float32), tolerance, tolerance, what: $"keys of layer {layer}");
            TensorAssert.Close(perBlock.Pool.ValueStorage(layer).to(ScalarType.Float32), fused.Pool.ValueStorage(layer).to(ScalarType.Float32), tolerance, tolerance, what: $"values of layer {layer}");
        }
    }

    [Fact]
    public void Steps_it_does_not_serve_take_the_per_block_forward()
    {
        using var scope = torch.NewDisposeScope();
        using var exact = Gpt2LMHeadModel.CreateRandom(Small with { ActivationFunction = "gelu" }, seed: 3);
        using var run = new Run(exact);
        Assert.False(run.Decode(exact, 0, KernelPolicy.Fast).Fused); // an activation it does not compute
        using var model = Gpt2LMHeadModel.CreateRandom(Small, seed: 3);
        using var other = new Run(model);
        Assert.False(other.Decode(model, 0, new KernelPolicy(BatchInvariant: true, MatVecKernel: true)).Fused);
        Assert.False(other.Decode(model, 1, new KernelPolicy(BatchInvariant: false, MatVecKernel: false)).Fused);
    }
}
