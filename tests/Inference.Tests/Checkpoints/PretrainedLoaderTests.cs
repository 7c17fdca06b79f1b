using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Checkpoints;

public sealed class PretrainedLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpt2o-load-").FullName;
    private static readonly Gpt2Config Tiny = Gpt2Config.Default with { NEmbd = 32, NHead = 2, NLayer = 2, NPositions = 64, VocabSize = 300, BosTokenId = 0, EosTokenIds = [0] };

    private string SaveTiny(Action<Dictionary<string, Tensor>>? edit = null)
    {
        using var scope = torch.NewDisposeScope();
        using var model = Gpt2LMHeadModel.CreateRandom(Tiny, seed: 3);
        string folder = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        model.SavePretrained(folder);
        if (edit is not null)
        {
            var tensors = model.StateDict().Where(p => p.Key != "lm_head.weight").ToDictionary(p => p.Key, p => p.Value.contiguous());
            edit(tensors);
            SafetensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
        }
        return folder;
    }

    [Fact]
    public void Save_then_load_reproduces_the_model_exactly_in_both_key_layouts()
    {
        using var scope = torch.NewDisposeScope();
        using var original = Gpt2LMHeadModel.CreateRandom(Tiny, seed: 3);
        string hfLayout = SaveTiny();
        // The original hub layout: no "transformer." prefix, plus attn.bias mask buffers that must be ignored.
        string hubLayout = SaveTiny(t =>
        {
            foreach (var key in t.Keys.ToList()) { t[key["transformer.".Length..]] = t[key]; t.Remove(key); }
            for (int i = 0; i < Tiny.NLayer; i++) t[$"h.{i}.attn.bias"] = torch.ones(1, 1, Tiny.NPositions, Tiny.NPositions).tril();
        });
        var ids = torch.tensor(new long[] { 5, 17, 200, 3 }, [1, 4]);
        using var expected = original.forward(ids);
        foreach (var folder in new[] { hfLayout, hubLayout })
        {
            using var loaded = Gpt2LMHeadModel.FromPretrained(folder);
            using var actual = loaded.forward(ids);
            Assert.True(actual.Logits.eq(expected.Logits).all().item<bool>(), folder);
        }
    }

    [Fact]
    public void Missing_unexpected_and_mis_shaped_tensors_are_reported_like_hf()
    {
        var missing = Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(SaveTiny(t => t.Remove("transformer.h.1.mlp.c_fc.bias"))));
        Assert.Contains("missing keys: transformer.h.1.mlp.c_fc.bias", missing.Message);

        var unexpected = Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(SaveTiny(t => t["transformer.h.0.extra.weight"] = torch.zeros(2))));
        Assert.Contains("unexpected keys: transformer.h.0.extra.weight", unexpected.Message);

        var shape = Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(SaveTiny(t => t["transformer.ln_f.bias"] = torch.zeros(33))));
        Assert.Contains("size mismatch: transformer.ln_f.bias: checkpoint [33], model [32]", shape.Message);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void A_checkpoint_with_non_finite_weights_is_refused_naming_the_tensor(float value)
    {
        var error = Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(SaveTiny(t =>
        {
            var weight = t["transformer.h.1.attn.c_proj.weight"].clone();
            weight[3, 5] = value;
            t["transformer.h.1.attn.c_proj.weight"] = weight;
        })));
        Assert.Contains("'transformer.h.1.attn.c_proj.weight' holds NaN or infinite values", error.Message);
    }

    /// <summary>A finite float32 weight beyond float16's range becomes infinite when loaded in float16: refused too.</summary>
    [Fact]
    public void A_weight_that_overflows_the_load_dtype_is_refused_naming_the_tensor()
    {
        string folder = SaveTiny(t =>
        {
            var weight = t["transformer.h.0.mlp.c_fc.weight"].clone();
            weight[1, 2] = 1e5f;
            t["transformer.h.0.mlp.c_fc.weight"] = weight;
        });
        using (Gpt2LMHeadModel.FromPretrained(folder)) { } // fine in float32
        var error = Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(folder, new ModelLoadOptions { DType = ScalarType.Float16 }));
        Assert.Contains("'transformer.h.0.mlp.c_fc.weight' holds NaN or infinite values", error.Message);
    }

    [Fact]
    public void Non_strict_loading_initialises_missing_heads_and_says_so()
    {
        string folder = SaveTiny();
        var log = new List<string>();
        using var model = Gpt2ForSequenceClassification.FromPretrained(folder, new ModelLoadOptions { Strict = false, Log = log.Add });
        Assert.Contains(log, l => l.Contains("missing keys: score.weight"));
        var strict = Assert.Throws<CheckpointException>(() => Gpt2ForSequenceClassification.FromPretrained(folder));
        Assert.Contains("score.weight", strict.Message);
    }

    [Fact]
    public void A_folder_without_weights_or_config_is_a_clear_error()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        Assert.Contains("config.json", Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(empty)).Message);
        File.WriteAllText(Path.Combine(empty, "config.json"), "{}");
        Assert.Contains("no model.safetensors", Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(empty)).Message);
        Assert.Contains("not found", Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(Path.Combine(_dir, "nope"))).Message);
    }

    [Fact]
    public void The_state_dict_key_list_matches_the_golden_checkpoint()
    {
        using var golden = SafetensorsFile.Open(Path.Combine(GoldenData.ModelDir("lm"), "model.safetensors"));
        using var model = new Gpt2LMHeadModel(Gpt2Config.FromFile(Path.Combine(GoldenData.ModelDir("lm"), "config.json")), ScalarType.Float32, torch.CPU);
        Assert.Equal(golden.Tensors.Keys.Order(), model.StateDict().Keys.Order());
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
