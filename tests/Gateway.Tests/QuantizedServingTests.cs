using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>
/// A silo started with <c>--quantize int8 --kv-dtype bfloat16</c>, serving a dense checkpoint (quantized at load) and
/// one written int4 in groups of 64 (served as it is), both with bf16 KV under float32 compute.
/// </summary>
public sealed class QuantizedServingFixture : GatewayFixture
{
    public const string PreQuantized = "alpha-int4";
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "gpt2o-int4-" + Guid.NewGuid().ToString("N"));

    protected override IEnumerable<string> SiloArguments =>
        ["--model", $"{Model}={ModelFolder}", "--model", $"{PreQuantized}={Int4Folder()}", "--quantize", "int8", "--kv-dtype", "bfloat16"];

    private string Int4Folder()
    {
        using var model = Inference.Model.Gpt2LMHeadModel.FromPretrained(ModelFolder,
            new Inference.Checkpoints.ModelLoadOptions { Quantization = Inference.Quantization.QuantizationConfig.Parse("int4", 64) });
        model.SavePretrained(_folder);
        return _folder;
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
