using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>
/// A silo whose other models cannot load: a model that works, plus one whose folder does not exist, one whose
/// config.json is not valid JSON and one whose weights hold a NaN.
/// </summary>
public sealed class BrokenModelFixture : GatewayFixture
{
    public const string Broken = "broken", BadConfig = "badconfig", NanWeights = "nanweights", BadQuantized = "badquantized";
    private readonly string _folders = Directory.CreateTempSubdirectory("gpt2o-broken-").FullName;

    protected override IEnumerable<string> SiloArguments =>
        ["--model", $"{Model}={ModelFolder}", "--model", $"{Broken}={Path.Combine(Path.GetTempPath(), "gpt2o-no-such-model-" + Guid.NewGuid().ToString("N"))}",
         "--model", $"{BadConfig}={BadConfigFolder()}", "--model", $"{NanWeights}={NanWeightsFolder()}", "--model", $"{BadQuantized}={BadQuantizedFolder()}"];

    private string BadConfigFolder()
    {
        string folder = Directory.CreateDirectory(Path.Combine(_folders, BadConfig)).FullName;
        File.WriteAllText(Path.Combine(folder, "config.json"), "{\"n_embd\": \"wide\", ");
        return folder;
    }

    private string NanWeightsFolder()
    {
        string folder = Path.Combine(_folders, NanWeights);
        using var model = Inference.Model.Gpt2LMHeadModel.FromPretrained(ModelFolder);
        using (TorchSharp.torch.no_grad()) model.transformer.h[0].mlp.c_fc.weight![0, 0] = float.NaN;
        model.SavePretrained(folder);
        return folder;
    }

    /// <summary>A quantized checkpoint whose config.json claims 8-bit levels for int4 tensors (half the bytes it says).</summary>
    private string BadQuantizedFolder()
    {
        string folder = Path.Combine(_folders, BadQuantized);
        using (var model = Inference.Model.Gpt2LMHeadModel.FromPretrained(ModelFolder,
                   new Inference.Checkpoints.ModelLoadOptions { Quantization = Inference.Quantization.QuantizationConfig.Parse("int4") }))
            model.SavePretrained(folder);
        // Claim 8-bit levels: every int4 tensor is then half the size the config says.
        string config = Path.Combine(folder, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"bits\": 4", "\"bits\": 8"));
        return folder;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_folders, recursive: true);
    }
}

/// <summary>A model that fails to load keeps the silo not ready and is a 503 that says why, while the other model serves.</summary>
public sealed class BrokenModelTests(BrokenModelFixture fixture) : IClassFixture<BrokenModelFixture>
{
    [Fact]
    public async Task A_model_that_cannot_load_is_not_ready_and_answers_503_with_the_reason()
    {
        using var client = fixture.Client();
        var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var body = await ReadJson(ready);
        Assert.Equal("loading", body.GetProperty("status").GetString());
        Assert.Contains(body.GetProperty("waiting").EnumerateArray(), w => w.GetString()!.StartsWith(BrokenModelFixture.Broken + "@", StringComparison.Ordinal));

        var error = await ReadError(await client.PostAsync("/v1/completions", Json(new { model = BrokenModelFixture.Broken, prompt = "Hi", max_tokens = 2 })),
            HttpStatusCode.ServiceUnavailable);
        Assert.Contains("failed to load", error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hi", max_tokens = 2 }))).StatusCode);
    }

    /// <summary>An invalid config.json or a NaN weight is that model's failure only: the silo starts and serves the others.</summary>
    [Theory]
    [InlineData(BrokenModelFixture.BadConfig, "config.json")]
    [InlineData(BrokenModelFixture.NanWeights, "holds NaN or infinite values")]
    [InlineData(BrokenModelFixture.BadQuantized, "a quantized weight here needs I8")]
    public async Task A_model_with_a_bad_file_answers_503_naming_it_while_the_silo_serves_the_rest(string model, string reason)
    {
        using var client = fixture.Client();
        var error = await ReadError(await client.PostAsync("/v1/completions", Json(new { model, prompt = "Hi", max_tokens = 2 })), HttpStatusCode.ServiceUnavailable);
        Assert.Contains("failed to load", error.GetProperty("message").GetString());
        Assert.Contains(reason, error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hi", max_tokens = 2 }))).StatusCode);
    }
}
