using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using Xunit;

namespace Gpt2Orleans.Inference.Tests.Model;

[Collection(GoldenCollection.Name)]
public sealed class HeadsGoldenTests(GoldenData golden)
{
    [Theory]
    [InlineData("seq_cls_right_pad")]
    [InlineData("seq_cls_left_pad")]
    [InlineData("seq_cls_eot_inside")]
    public void Sequence_classification_pools_where_hf_pools_and_matches_logits(string id)
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case(id);
        using var output = golden.SeqCls.forward(GoldenJson.Input(c, "input_ids")!, GoldenJson.Input(c, "attention_mask"));
        var expected = c.GetProperty("expected");
        Assert.Equal(GoldenJson.Ints(expected.GetProperty("pooled_index")).Select(i => (long)i), output.PooledIndex);
        TensorAssert.Close(golden.Expected(expected.GetProperty("logits").GetString()!), output.Logits, what: id);
    }

    [Fact]
    public void Token_classification_matches_at_valid_positions()
    {
        using var scope = torch.NewDisposeScope();
        var c = golden.Case("token_cls_right_pad");
        using var output = golden.TokenCls.forward(GoldenJson.Input(c, "input_ids")!, GoldenJson.Input(c, "attention_mask"));
        var expected = c.GetProperty("expected");
        var valid = GoldenJson.Tensor(expected.GetProperty("valid_mask"))!.unsqueeze(-1).expand(output.Logits.shape);
        TensorAssert.Close(golden.Expected(expected.GetProperty("logits").GetString()!), output.Logits, mask: valid);
    }

    [Fact]
    public void Sequence_classification_without_pad_token_rejects_batches_as_hf_does()
    {
        using var scope = torch.NewDisposeScope();
        var config = golden.SeqCls.Config with { PadTokenId = null };
        using var model = new Inference.Model.Gpt2ForSequenceClassification(config, golden.SeqCls.DType, golden.SeqCls.Device);
        var error = Assert.Throws<ArgumentException>(() => model.forward(torch.ones(2, 3, TorchSharp.torch.ScalarType.Int64)));
        Assert.Contains("no padding token", error.Message);
    }
}
