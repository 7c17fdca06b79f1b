using System.Net;
using System.Runtime.InteropServices;
using Gpt2Orleans.Gateway.Tests.Support;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>
/// /v1/embeddings over real HTTP: each input's vector is the library's last hidden state of that text alone, pooled
/// (so batching and padding change nothing), in floats or base64; /tokenize and /detokenize round-trip.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class EmbeddingsTests(GatewayFixture fixture)
{
    private static readonly string[] Texts = ["The city at night was quiet", "Hi", "A longer sentence about rivers, bridges and the sea"];

    /// <summary>The hidden states of one unpadded text, computed here with the library's model.</summary>
    private static float[] Expected(string text, bool mean)
    {
        using var model = Gpt2LMHeadModel.FromPretrained(GatewayFixture.ModelFolder);
        using var scope = torch.NewDisposeScope();
        var ids = Gpt2Tokenizer.Default.Encode(text);
        using var output = model.transformer.forward(torch.tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0));
        var hidden = output.LastHiddenState[0];
        return (mean ? hidden.mean([0]) : hidden[^1]).data<float>().ToArray();
    }

    [Theory]
    [InlineData("mean")]
    [InlineData("last")]
    public async Task Each_input_s_embedding_is_its_pooled_last_hidden_state(string pooling)
    {
        using var client = fixture.Client();
        var body = await ReadJson(await client.PostAsync("/v1/embeddings", Json(new { model = GatewayFixture.Model, input = Texts, pooling })));
        Assert.Equal("list", body.GetProperty("object").GetString());
        var data = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(Texts.Length, data.Count);
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(i, data[i].GetProperty("index").GetInt32());
            var vector = data[i].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            var expected = Expected(Texts[i], pooling == "mean");
            Assert.Equal(expected.Length, vector.Length);
            for (int k = 0; k < expected.Length; k++) Assert.Equal(expected[k], vector[k], 1e-4f);
        }
        Assert.Equal(Texts.Sum(t => Gpt2Tokenizer.Default.Encode(t).Count), body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Base64_holds_the_same_floats_and_token_ids_embed_as_their_text()
    {
        using var client = fixture.Client();
        var ids = Gpt2Tokenizer.Default.Encode(Texts[0]);
        var floats = await ReadJson(await client.PostAsync("/v1/embeddings", Json(new { model = GatewayFixture.Model, input = Texts[0] })));
        var packed = await ReadJson(await client.PostAsync("/v1/embeddings", Json(new { model = GatewayFixture.Model, input = ids, encoding_format = "base64" })));
        var decoded = MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(packed.GetProperty("data")[0].GetProperty("embedding").GetString()!)).ToArray();
        Assert.Equal(floats.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()), decoded,
            (a, b) => Math.Abs(a - b) <= 1e-4f); // two requests may be batched with different neighbours, which rounds differently
    }

    [Theory]
    [InlineData("""{"model": "alpha", "input": "x", "dimensions": 8}""", "dimensions")]
    [InlineData("""{"model": "alpha", "input": ""}""", "input")]
    [InlineData("""{"model": "alpha", "input": []}""", "input")]
    [InlineData("""{"model": "alpha"}""", "input")]
    [InlineData("""{"model": "alpha", "input": [1, "a"]}""", "input")]
    [InlineData("""{"model": "alpha", "input": "x", "encoding_format": "hex"}""", "encoding_format")]
    [InlineData("""{"model": "alpha", "input": "x", "pooling": "max"}""", "pooling")]
    public async Task Bad_embedding_requests_are_400s_naming_the_field(string body, string parameter)
    {
        using var client = fixture.Client();
        var error = await ReadError(await client.PostAsync("/v1/embeddings", new StringContent(body, System.Text.Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.Equal(parameter, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Tokenize_and_detokenize_round_trip()
    {
        const string text = "Héllo, wörld! 🚀 tokens";
        using var client = fixture.Client();
        var tokenized = await ReadJson(await client.PostAsync("/tokenize", Json(new { model = GatewayFixture.Model, prompt = text })));
        var tokens = tokenized.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToList();
        Assert.Equal(Gpt2Tokenizer.Default.Encode(text), tokens);
        Assert.Equal(tokens.Count, tokenized.GetProperty("count").GetInt32());
        Assert.Equal(128, tokenized.GetProperty("max_model_len").GetInt32()); // the tiny model's n_positions
        var detokenized = await ReadJson(await client.PostAsync("/detokenize", Json(new { model = GatewayFixture.Model, tokens })));
        Assert.Equal(text, detokenized.GetProperty("prompt").GetString());

        var error = await ReadError(await client.PostAsync("/detokenize", Json(new { model = GatewayFixture.Model, tokens = new[] { 1, 99999 } })), HttpStatusCode.BadRequest);
        Assert.Equal("tokens", error.GetProperty("param").GetString());
        var unknown = await client.PostAsync("/tokenize", Json(new { model = "no-such-model", prompt = "x" }));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }
}
