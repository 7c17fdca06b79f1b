using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Model;

[Collection(GoldenCollection.Name)]
public sealed class ForwardGoldenTests(GoldenData golden)
{
    [Theory]
    [InlineData("lm")]
    [InlineData("lm_original_layout")]
    public void Unpadded_forward_matches_logits_hidden_states_attentions_and_key_values(string layout)
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case("forward_nopad");
        var ids = GoldenJson.Input(c, "input_ids")!;
        var model = golden.Lm(layout);
        var config = model.Config;
        using var cache = new KeyValueCache(config, ids.shape[0], (int)ids.shape[1], model.DType, model.Device);
        using var output = model.forward(ids, cache: cache, outputHiddenStates: true, outputAttentions: true);

        var expected = c.GetProperty("expected");
        TensorAssert.Close(golden.Expected(expected.GetProperty("logits").GetString()!), output.Logits, what: "logits");
        TensorAssert.Close(golden.Expected(expected.GetProperty("last_hidden_state").GetString()!), output.Transformer.LastHiddenState, what: "last_hidden_state");
        var hidden = GoldenJson.Names(expected.GetProperty("hidden_states"));
        Assert.Equal(hidden.Length, output.Transformer.HiddenStates!.Count);
        for (int i = 0; i < hidden.Length; i++)
            TensorAssert.Close(golden.Expected(hidden[i]), output.Transformer.HiddenStates[i], what: hidden[i]);
        var attentions = GoldenJson.Names(expected.GetProperty("attentions"));
        for (int i = 0; i < attentions.Length; i++)
            TensorAssert.Close(golden.Expected(attentions[i]), output.Transformer.Attentions![i], what: attentions[i]);
        int layer = 0;
        foreach (var pair in expected.GetProperty("present_key_values").EnumerateArray())
        {
            var (key, value) = cache.Layer(layer++);
            TensorAssert.Close(golden.Expected(pair[0].GetString()!), key, what: "key");
            TensorAssert.Close(golden.Expected(pair[1].GetString()!), value, what: "value");
        }
    }

    [Theory]
    [InlineData("forward_left_pad", "lm")]
    [InlineData("forward_right_pad", "lm")]
    [InlineData("forward_left_pad", "lm_original_layout")]
    [InlineData("forward_right_pad", "lm_original_layout")]
    public void Padded_forward_matches_at_valid_positions(string id, string layout)
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case(id);
        using var output = golden.Lm(layout).forward(GoldenJson.Input(c, "input_ids")!, GoldenJson.Input(c, "attention_mask"), GoldenJson.Input(c, "position_ids"));
        var expected = c.GetProperty("expected");
        var valid = GoldenJson.Tensor(expected.GetProperty("valid_mask"))!.unsqueeze(-1).expand(output.Logits.shape);
        TensorAssert.Close(golden.Expected(expected.GetProperty("logits").GetString()!), output.Logits, mask: valid, what: id);
    }

    [Fact]
    public void Fused_and_eager_attention_agree()
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case("forward_left_pad");
        var model = golden.Lm();
        var ids = GoldenJson.Input(c, "input_ids")!;
        var mask = GoldenJson.Input(c, "attention_mask");
        var positions = GoldenJson.Input(c, "position_ids");
        using var fused = model.forward(ids, mask, positions);
        using var eager = model.forward(ids, mask, positions, outputAttentions: true);
        var valid = mask!.unsqueeze(-1).expand(fused.Logits.shape);
        TensorAssert.Close(eager.Logits, fused.Logits, atol: 1e-5, rtol: 1e-5, mask: valid, what: "fused vs eager");
    }

    [Fact]
    public void Incremental_decoding_with_the_cache_matches_hf_step_logits()
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case("incremental");
        var model = golden.Lm();
        var prompt = GoldenJson.Input(c, "prompt_ids")!;
        using var cache = new KeyValueCache(model.Config, 1, 2, model.DType, model.Device); // small: forces growth
        using (var prefill = model.forward(prompt, cache: cache))
            TensorAssert.Close(golden.Expected(c.GetProperty("expected").GetProperty("prefill_logits").GetString()!), prefill.Logits, what: "prefill");
        var steps = GoldenJson.Matrix(c.GetProperty("inputs").GetProperty("step_tokens"))!;
        var names = GoldenJson.Names(c.GetProperty("expected").GetProperty("step_logits"));
        for (int k = 0; k < steps.Length; k++)
        {
            using var step = model.forward(torch.tensor(steps[k], [1, 1]), cache: cache);
            TensorAssert.Close(golden.Expected(names[k]), step.Logits, what: names[k]);
        }
    }

    [Fact]
    public void Batched_incremental_decoding_with_left_padding_matches_hf()
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case("incremental_batch_left_pad");
        var model = golden.Lm();
        var ids = GoldenJson.Input(c, "input_ids")!;
        using var cache = new KeyValueCache(model.Config, ids.shape[0], 16, model.DType, model.Device);
        using (var prefill = model.forward(ids, GoldenJson.Input(c, "attention_mask"), GoldenJson.Input(c, "position_ids"), cache, lastPositionOnly: true))
            TensorAssert.Close(golden.Expected(c.GetProperty("expected").GetProperty("prefill_last_logits").GetString()!), prefill.Logits.squeeze(1), what: "prefill");
        var names = GoldenJson.Names(c.GetProperty("expected").GetProperty("step_logits"));
        int k = 0;
        foreach (var step in c.GetProperty("inputs").GetProperty("steps").EnumerateArray())
        {
            using var output = model.forward(GoldenJson.Tensor(step.GetProperty("tokens"))!, GoldenJson.Tensor(step.GetProperty("attention_mask")),
                GoldenJson.Tensor(step.GetProperty("position_ids")), cache);
            TensorAssert.Close(golden.Expected(names[k]), output.Logits.squeeze(1), what: names[k]);
            k++;
        }
    }

    [Theory]
    [InlineData("lm_loss")]
    [InlineData("lm_loss_ignore_prefix")]
    [InlineData("lm_loss_batch_right_pad")]
    public void Lm_loss_and_perplexity_match(string id)
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case(id);
        using var output = golden.Lm().forward(GoldenJson.Input(c, "input_ids")!, GoldenJson.Input(c, "attention_mask"), labels: GoldenJson.Input(c, "labels"));
        double loss = output.Loss!.item<float>();
        Assert.Equal(c.GetProperty("expected").GetProperty("loss").GetDouble(), loss, 1e-4);
        double perplexity = c.GetProperty("expected").GetProperty("perplexity").GetDouble();
        Assert.True(Math.Abs(Math.Exp(loss) - perplexity) <= 1e-4 * perplexity, $"perplexity {Math.Exp(loss)} vs {perplexity}");
    }
}
