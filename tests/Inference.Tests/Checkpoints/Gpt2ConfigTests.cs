using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Inference.Tests.Checkpoints;

public sealed class Gpt2ConfigTests
{
    [Fact]
    public void Absent_fields_take_hf_defaults()
    {
        var config = Gpt2Config.FromJson("{}");
        Assert.Equal(Gpt2Config.Default.ToJson(), config.ToJson());
        Assert.Equal(50257, config.VocabSize);
        Assert.Equal(1024, config.NPositions);
        Assert.Equal(3072, config.InnerDim);
        Assert.Equal("gelu_new", config.ActivationFunction);
        Assert.Equal([50256], config.EosTokenIds);
        Assert.Null(config.PadTokenId);
        Assert.Equal(2, config.NumLabels);
    }

    [Fact]
    public void Reads_the_fields_that_change_the_math_and_hf_aliases()
    {
        var config = Gpt2Config.FromJson("""
            {"hidden_size": 96, "num_attention_heads": 6, "num_hidden_layers": 3, "max_position_embeddings": 77, "n_inner": 200,
             "activation_function": "quick_gelu", "layer_norm_epsilon": 1e-6, "scale_attn_weights": false,
             "scale_attn_by_inverse_layer_idx": true, "reorder_and_upcast_attn": true, "eos_token_id": [3, 4], "pad_token_id": 0,
             "id2label": {"0": "neg", "1": "neu", "2": "pos"}, "tie_word_embeddings": false}
            """);
        Assert.Equal((96, 6, 3, 77, 200, 16), (config.NEmbd, config.NHead, config.NLayer, config.NPositions, config.InnerDim, config.HeadDim));
        Assert.Equal("quick_gelu", config.ActivationFunction);
        Assert.Equal(1e-6, config.LayerNormEpsilon);
        Assert.False(config.ScaleAttnWeights);
        Assert.True(config.ScaleAttnByInverseLayerIdx && config.ReorderAndUpcastAttn);
        Assert.False(config.TieWordEmbeddings);
        Assert.Equal([3, 4], config.EosTokenIds);
        Assert.Equal(3, config.NumLabels);
        Assert.Equal("pos", config.Id2Label[2]);
        Assert.Equal(config.ToJson(), Gpt2Config.FromJson(config.ToJson()).ToJson());
    }

    [Theory]
    [InlineData("{\"activation_function\": \"swishy\"}", "activation_function")]
    [InlineData("{\"n_embd\": 100, \"n_head\": 12}", "n_head")]
    [InlineData("{\"add_cross_attention\": true}", "add_cross_attention")]
    [InlineData("{\"model_type\": \"llama\"}", "model_type")]
    [InlineData("{\"n_layer\": \"twelve\"}", "n_layer")]
    [InlineData("{\"n_positions\": 0}", "n_positions")]
    [InlineData("{\"vocab_size\": 999999999}", "vocab_size")]
    [InlineData("{\"summary_type\": \"attn\"}", "summary_type")]
    [InlineData("{\"pad_token_id\": 60000}", "pad_token_id")]
    [InlineData("{\"layer_norm_epsilon\": -1}", "layer_norm_epsilon")]
    [InlineData("{\"id2label\": {\"0\": \"a\", \"2\": \"c\"}}", "id2label")]
    [InlineData("{\"problem_type\": \"ranking\"}", "problem_type")]
    [InlineData("not json", "invalid JSON")]
    public void What_cannot_be_honoured_is_a_load_error_naming_the_field(string json, string field)
    {
        var error = Assert.Throws<CheckpointException>(() => Gpt2Config.FromJson(json));
        Assert.Contains(field, error.Message);
    }

    [Fact]
    public void Config_overrides_apply_key_value_pairs_on_hfs_defaults()
    {
        var config = Gpt2Config.FromOverrides("n_layer=4, n_embd=256,n_head=4,n_positions=256,resid_pdrop=0,activation_function=relu,scale_attn_by_inverse_layer_idx=true");
        Assert.Equal((4, 256, 4, 256), (config.NLayer, config.NEmbd, config.NHead, config.NPositions));
        Assert.Equal(0, config.ResidPdrop);
        Assert.Equal(0.1, config.EmbdPdrop);
        Assert.Equal("relu", config.ActivationFunction);
        Assert.True(config.ScaleAttnByInverseLayerIdx);
        Assert.Equal(Gpt2Config.Default.VocabSize, config.VocabSize);
        Assert.Contains("'n_layers' is not a GPT2Config field", Assert.Throws<ArgumentException>(() => Gpt2Config.FromOverrides("n_layers=2")).Message);
        Assert.Contains("not key=value", Assert.Throws<ArgumentException>(() => Gpt2Config.FromOverrides("n_layer")).Message);
        Assert.Contains("n_head", Assert.Throws<ArgumentException>(() => Gpt2Config.FromOverrides("n_embd=10,n_head=3")).Message);
        Assert.Contains("n_layer", Assert.Throws<ArgumentException>(() => Gpt2Config.FromOverrides("n_layer=four")).Message);
    }
}
