using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Model;

/// <summary>Config fields that change the math, beyond what the golden checkpoints exercise: checked for internal consistency.</summary>
public sealed class ConfigBehaviourTests
{
    private static readonly Gpt2Config Small = Gpt2Config.Default with
    {
        NEmbd = 48, NHead = 3, NLayer = 3, NPositions = 40, VocabSize = 500, BosTokenId = 0, EosTokenIds = [0],
    };

    private static Tensor Ids(int batch, int length, int seed) =>
        torch.randint(0, 500, [batch, length], generator: new Generator((ulong)seed));

    public static TheoryData<string> Variants() =>
    [
        "gelu_new", "gelu", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", "swish", "tanh",
        "n_inner", "no_scale", "inverse_layer_idx", "reorder_and_upcast", "untied",
    ];

    private static Gpt2Config Variant(string name) => name switch
    {
        "n_inner" => Small with { NInner = 80 },
        "no_scale" => Small with { ScaleAttnWeights = false },
        "inverse_layer_idx" => Small with { ScaleAttnByInverseLayerIdx = true },
        "reorder_and_upcast" => Small with { ReorderAndUpcastAttn = true },
        "untied" => Small with { TieWordEmbeddings = false },
        _ => Small with { ActivationFunction = name },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Incremental_decoding_equals_a_full_forward_and_fused_equals_eager(string variant)
    {
        using var scope = torch.NewDisposeScope();
        using var model = Gpt2LMHeadModel.CreateRandom(Variant(variant), seed: 11);
        var ids = Ids(2, 12, 5);
        using var full = model.forward(ids);
        using var eager = model.forward(ids, outputAttentions: true);
        TensorAssert.Close(full.Logits, eager.Logits, 1e-5, 1e-5, what: "fused vs eager");

        using var cache = new KeyValueCache(model.Config, 2, 4, model.DType, model.Device);
        using (var prefill = model.forward(ids.narrow(1, 0, 7), cache: cache))
            TensorAssert.Close(full.Logits.narrow(1, 0, 7), prefill.Logits, 1e-5, 1e-5, what: "prefill");
        for (int t = 7; t < 12; t++)
        {
            using var step = model.forward(ids.narrow(1, t, 1), cache: cache);
            TensorAssert.Close(full.Logits.narrow(1, t, 1), step.Logits, 1e-5, 1e-5, what: $"step {t}");
        }
    }

    [Fact]
    public void Attention_scaling_fields_change_the_output()
    {
        using var scope = torch.NewDisposeScope();
        var ids = Ids(1, 10, 9);
        Tensor Logits(Gpt2Config c)
        {
            using var model = Gpt2LMHeadModel.CreateRandom(c, seed: 2);
            using var output = model.forward(ids);
            return output.Logits.clone();
        }
        var baseline = Logits(Small);
        Assert.True(TensorAssert.MaxDiff(baseline, Logits(Small with { ScaleAttnWeights = false })) > 1e-3);
        Assert.True(TensorAssert.MaxDiff(baseline, Logits(Small with { ScaleAttnByInverseLayerIdx = true })) > 1e-3);
        // reorder_and_upcast_attn is HF's numerically safer order of the same math: equal in float32.
        Assert.True(TensorAssert.MaxDiff(baseline, Logits(Small with { ReorderAndUpcastAttn = true })) < 1e-5);
        Assert.True(TensorAssert.MaxDiff(baseline, Logits(Small with { LayerNormEpsilon = 1e-1 })) > 1e-3);
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        using var scope = torch.NewDisposeScope();
        using var model = Gpt2LMHeadModel.CreateRandom(Small, seed: 1);
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentOutOfRangeException>(() => model.forward(torch.tensor(new long[] { 1, 500 }, [1, 2]))).Message);
        Assert.Contains("n_positions", Assert.Throws<ArgumentException>(() => model.forward(Ids(1, 41, 1))).Message);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => model.forward(torch.zeros([1, 0], ScalarType.Int64))).Message);
        Assert.Contains("attention_mask", Assert.Throws<ArgumentException>(() => model.forward(Ids(1, 4, 1), torch.ones(1, 3))).Message);
    }
}
