using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>
/// A silo started with <c>--quantize int8 --kv-dtype bfloat16</c>, serving a dense checkpoint (quantized at load),
/// one written int4 in groups of 64 and one written nf4 in groups of 32 (served as they are), all with bf16 KV under
/// float32 compute.
/// </summary>
public sealed class QuantizedServingFixture : GatewayFixture
{
    public const string PreQuantized = "alpha-int4";
    public const string PreQuantizedNf4 = "alpha-nf4";
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "gpt2o-quantized-" + Guid.NewGuid().ToString("N"));

    protected override IEnumerable<string> SiloArguments =>
        ["--model", $"{Model}={ModelFolder}", "--model", $"{PreQuantized}={QuantizedFolder("int4", 64)}",
         "--model", $"{PreQuantizedNf4}={QuantizedFolder("nf4", 32)}", "--quantize", "int8", "--kv-dtype", "bfloat16"];

    private string QuantizedFolder(string method, int groupSize)
    {
        using var model = Inference.Model.Gpt2LMHeadModel.FromPretrained(ModelFolder,
            new Inference.Checkpoints.ModelLoadOptions { Quantization = Inference.Quantization.QuantizationConfig.Parse(method, groupSize) });
        string folder = Path.Combine(_folder, method);
        model.SavePretrained(folder);
        return folder;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}

/// <summary>
/// GET /v1/models says each model's compute dtype and weight quantization, and quantized models generate. Its silo
/// runs alone: started beside the others, its load competes for the two cores with tests that time their streams.
/// </summary>
[Collection(QuantizedServingCollection.Name)]
public sealed class QuantizedServingTests(QuantizedServingFixture fixture) : IClassFixture<QuantizedServingFixture>
{
    [Theory]
    [InlineData(GatewayFixture.Model, "int8", 8, 32)]
    [InlineData(QuantizedServingFixture.PreQuantized, "int4", 4, 64)]
    [InlineData(QuantizedServingFixture.PreQuantizedNf4, "nf4", 4, 32)]
    public async Task A_quantized_model_says_so_and_completes(string model, string method, int bits, int groupSize)
    {
        using var client = fixture.Client();
        // Ready once both models have loaded (quantizing one at start-up) and the catalog lists the silo's.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((await client.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline) await Task.Delay(100);
        HttpResponseMessage described;
        while ((described = await client.GetAsync($"/v1/models/{model}")).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline) await Task.Delay(100);
        var info = await ReadJson(described);
        Assert.Equal("float32", info.GetProperty("dtype").GetString());
        var quantization = info.GetProperty("quantization");
        Assert.Equal(method, quantization.GetProperty("method").GetString());
        Assert.Equal(bits, quantization.GetProperty("bits").GetInt32());
        Assert.Equal(groupSize, quantization.GetProperty("group_size").GetInt32());

        var completion = await client.PostAsync("/v1/completions", Json(new { model, prompt = "Once upon a time", max_tokens = 5 }));
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        var choice = (await ReadJson(completion)).GetProperty("choices")[0];
        Assert.False(string.IsNullOrEmpty(choice.GetProperty("text").GetString()));
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class QuantizedServingCollection
{
    public const string Name = "quantized serving";
}
