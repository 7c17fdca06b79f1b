using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Quantization;
using Gpt2Orleans.Inference.Tests.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Quantization;

/// <summary>
/// A model with quantized projections and LM head: the fused step's integer kernel against the same model's
/// dequantized libtorch path and against the float32 model, a quantized checkpoint written and read back exactly,
/// and the ways a quantized checkpoint can be wrong.
/// </summary>
public sealed class QuantizedModelTests : IDisposable
{
    private static readonly Gpt2Config Small = CpuPagedStepTests.Small;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "gpt2o-quantized-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static Gpt2LMHeadModel Quantized(string type, int seed = 3, int groupSize = 32) =>
        Gpt2LMHeadModel.CreateRandom(Small, seed, new ModelLoadOptions { Quantization = QuantizationConfig.Parse(type, groupSize) });

    [SkippableTheory]
    [InlineData("int8")]
    [InlineData("int4")]
    [InlineData("nf4")]
    public void The_fused_integer_step_equals_the_dequantized_forward_up_to_the_inputs_rounding(string type)
    {
        Skip.IfNot(QuantizedMatVec.Supported && CpuMatVec.Supported, "the integer kernel needs AVX2 + FMA");
        using var scope = torch.NewDisposeScope();
        using var model = Quantized(type);
        Assert.Equal(type, model.Quantization!.Name);
        using var fused = new CpuPagedStepTests.Run(model, KernelPolicy.Fast);
        using var reference = new CpuPagedStepTests.Run(model);
        Assert.True(fused.PrefillFused);
        AssertClose(reference.PrefillLogits, fused.PrefillLogits, "prefill");
        for (int step = 0; step < 4; step++)
        {
            var (actual, wasFused) = fused.Decode(model, step, KernelPolicy.Fast);
            var (expected, _) = reference.Decode(model, step, KernelPolicy.Dense);
            Assert.True(wasFused, "the fused path did not serve a quantized decode step");
            AssertClose(expected, actual, $"decode step {step}");
        }
    }

    /// <summary>
    /// The decode steps (three rows) run the integer kernel, whose int8 inputs move each product by at most half a
    /// level of 127: the logits by well under 1% of their spread; the 16-row prefill multiplies dequantized float tiles.
    /// </summary>
    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        double spread = (expected.max() - expected.min()).item<float>();
        double diff = TensorAssert.MaxDiff(expected, actual);
        Assert.True(diff <= 0.01 * spread, $"{what}: max |Δlogit| {diff} against a spread of {spread}");
        Assert.True(diff > 0, $"{what}: identical logits: the fused step's kernels did not run");
    }

    [Theory]
    [InlineData("int8", 0.02)]
    [InlineData("int4", 0.25)]
    [InlineData("nf4", 0.25)]
    public void Quantized_logits_stay_close_to_float32(string type, double tolerance)
    {
        using var scope = torch.NewDisposeScope();
        using var exact = Gpt2LMHeadModel.CreateRandom(Small, seed: 3);
        using var model = Quantized(type);
        var ids = torch.tensor(new long[,] { { 5, 17, 3, 99, 42, 7, 250, 1 } });
        using var expected = exact.forward(ids);
        using var actual = model.forward(ids);
        double spread = (expected.Logits.max() - expected.Logits.min()).item<float>();
        double diff = TensorAssert.MaxDiff(expected.Logits, actual.Logits);
        Assert.True(diff > 0 && diff <= tolerance * spread, $"{type}: max |Δlogit| {diff}, spread {spread}");
    }

    [Theory]
    [InlineData("int8", 32)]
    [InlineData("int4", 64)]
    [InlineData("nf4", 32)]
    public void A_quantized_checkpoint_loads_back_exactly_without_its_dense_weights(string type, int groupSize)
    {
        using var scope = torch.NewDisposeScope();
        using var model = Quantized(type, groupSize: groupSize);
        model.SavePretrained(_folder);
        var config = Gpt2Config.FromFile(Path.Combine(_folder, "config.json"));
        Assert.Equal(QuantizationConfig.Parse(type, groupSize), config.Quantization);
        using var loaded = Gpt2LMHeadModel.FromPretrained(_folder);
        Assert.Equal(model.Quantization, loaded.Quantization);
        var saved = model.QuantizedWeights();
        var read = loaded.QuantizedWeights();
        Assert.Equal(Small.NLayer * 4 + 1, read.Count); // four projections a block, and the tied wte
        Assert.Contains("transformer.wte.weight", read.Keys);
        foreach (var (name, q) in saved)
        {
            Assert.Equal(q.Data, read[name].Data);
            Assert.Equal(q.Scales, read[name].Scales);
        }
        Assert.DoesNotContain(loaded.StateDict().Keys, k => k.EndsWith("c_attn.weight") || k == "transformer.wte.weight");
        var ids = torch.tensor(new long[,] { { 1, 2, 3, 4 } });
        using var a = model.forward(ids);
        using var b = loaded.forward(ids);
        Assert.Equal(0, TensorAssert.MaxDiff(a.Logits, b.Logits));
        // Asking for the quantization it already has is fine; another one is refused.
        using (Gpt2LMHeadModel.FromPretrained(_folder, new ModelLoadOptions { Quantization = model.Quantization })) { }
        var other = QuantizationConfig.Parse(type == "int8" ? "int4" : "int8");
        Assert.Contains("cannot be loaded as", Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(_folder, new ModelLoadOptions { Quantization = other })).Message);
    }

    [Fact]
    public void Quantizing_at_load_equals_quantizing_the_loaded_model()
    {
        using var scope = torch.NewDisposeScope();
        using (var dense = Gpt2LMHeadModel.CreateRandom(Small, seed: 4)) dense.SavePretrained(_folder);
        using var atLoad = Gpt2LMHeadModel.FromPretrained(_folder, new ModelLoadOptions { Quantization = QuantizationConfig.Parse("int4") });
        using var after = Gpt2LMHeadModel.FromPretrained(_folder);
        after.Quantize(QuantizationConfig.Parse("int4")!);
        foreach (var (name, q) in after.QuantizedWeights()) Assert.Equal(q.Data, atLoad.QuantizedWeights()[name].Data);
    }

    /// <summary>Rewrites the saved quantized checkpoint with <paramref name="change"/> applied to its tensors.</summary>
    private void Tamper(Action<Dictionary<string, Tensor>> change)
    {
        var path = Path.Combine(_folder, "model.safetensors");
        var tensors = new Dictionary<string, Tensor>();
        using (var file = SafetensorsFile.Open(path))
            foreach (var (name, info) in file.Tensors)
            {
                var t = torch.empty(info.Shape, info.DType switch { "I8" => ScalarType.Int8, "U8" => ScalarType.Byte, _ => ScalarType.Float32 });
                file.ReadBytes(name, t.bytes);
                tensors[name] = t;
            }
        change(tensors);
        SafetensorsWriter.Save(path, tensors);
    }

    [Fact]
    public void A_bad_quantized_checkpoint_is_a_clear_load_error()
    {
        using var scope = torch.NewDisposeScope();
        using (var model = Quantized("int4")) model.SavePretrained(_folder);
        const string levels = "transformer.h.0.mlp.c_fc.weight";
        string Error() => Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(_folder)).Message;

        Tamper(t => t[levels] = t[levels].narrow(1, 0, 16).contiguous()); // a truncated row
        Assert.Contains($"'{levels}' is U8", Error());

        using (var model = Quantized("int4")) model.SavePretrained(_folder);
        Tamper(t => t.Remove(levels + "_scale"));
        Assert.Contains("missing keys: " + levels + "_scale", Error());

        using (var model = Quantized("int4")) model.SavePretrained(_folder);
        Tamper(t => t[levels + "_scale"][0, 0] = -1f);
        Assert.Contains("scales must be finite and non-negative", Error());

        using (var model = Quantized("int4")) model.SavePretrained(_folder);
        Tamper(t => t[levels] = t[levels].to(ScalarType.Float32));
        Assert.Contains("a quantized weight here needs U8", Error());

        var config = Path.Combine(_folder, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"gpt2orleans\"", "\"bitsandbytes\""));
        Assert.Contains("quant_method 'bitsandbytes' is not supported", Error());
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"bitsandbytes\"", "\"gpt2orleans\"").Replace("\"group_size\": 32", "\"group_size\": 20"));
        Assert.Contains("multiple of 32", Error());
    }

    [Fact]
    public void An_nf4_checkpoint_says_so_and_a_quant_type_it_cannot_honour_is_a_load_error()
    {
        using var scope = torch.NewDisposeScope();
        using (var model = Quantized("nf4")) model.SavePretrained(_folder);
        var config = Path.Combine(_folder, "config.json");
        var text = File.ReadAllText(config);
        Assert.Contains("\"quant_type\": \"nf4\"", text);
        string Error() => Assert.Throws<CheckpointException>(() => Gpt2LMHeadModel.FromPretrained(_folder)).Message;
        File.WriteAllText(config, text.Replace("\"nf4\"", "\"fp4\""));
        Assert.Contains("quant_type 'fp4' with 4 bits is not supported", Error());
        File.WriteAllText(config, text.Replace("\"bits\": 4", "\"bits\": 8"));
        Assert.Contains("quant_type 'nf4' with 8 bits is not supported", Error());
        File.WriteAllText(config, text); // as written, it loads as nf4 (read as int4, its codes would mean other weights)
        using var loaded = Gpt2LMHeadModel.FromPretrained(_folder);
        Assert.Equal(QuantizationType.Nf4, loaded.Quantization!.Type);
    }

    [Fact]
    public void A_quantized_model_is_not_trained_and_a_bad_quantization_name_is_refused()
    {
        Assert.Contains("expected int8, int4, nf4 or none", Assert.Throws<ArgumentException>(() => QuantizationConfig.Parse("int3")).Message);
        Assert.Null(QuantizationConfig.Parse("none"));
        using var model = Quantized("int8");
        model.train();
        var trainer = new Inference.Training.Trainer(new Inference.Training.CausalLmTask(), model, Inference.Tokenization.Gpt2Tokenizer.Default, new Inference.Training.TrainingArguments());
        Assert.Contains("quantized", Assert.Throws<ArgumentException>(() => trainer.Train([])).Message);
    }
}
