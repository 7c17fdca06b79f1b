using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using Gpt2Orleans.Inference.Classification;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>/v1/classifications over real HTTP gives what the inference library gives, for both kinds of head.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ClassificationsTests(GatewayFixture fixture)
{
    [Fact]
    public async Task Sequence_classification_answers_each_input_s_label_and_scores()
    {
        string[] texts = ["What a wonderful film", "Terrible, boring and far too long"];
        using var client = fixture.Client();
        var body = await ReadJson(await client.PostAsync("/v1/classifications", Json(new { model = GatewayFixture.Sentiment, input = texts })));
        var data = body.GetProperty("data").EnumerateArray().ToList();

        using var model = Gpt2ForSequenceClassification.FromPretrained(GatewayFixture.Folder(GatewayFixture.Sentiment));
        var expected = new TextClassifier(Gpt2Tokenizer.Default).ClassifySequences(model, texts);
        Assert.Equal(expected.Select(e => e.Label), data.Select(d => d.GetProperty("label").GetString()));
        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(expected[i].Scores.Select(s => (double)s), data[i].GetProperty("scores").EnumerateArray().Select(s => s.GetProperty("score").GetDouble()),
                (a, b) => Math.Abs(a - b) < 1e-5);
    }

    [Fact]
    public async Task Token_classification_labels_every_token()
    {
        const string text = "Ada Lovelace was born in London";
        using var client = fixture.Client();
        var body = await ReadJson(await client.PostAsync("/v1/classifications", Json(new { model = GatewayFixture.Tagger, input = text })));
        var tokens = body.GetProperty("data")[0].GetProperty("tokens").EnumerateArray().ToList();

        using var model = Gpt2ForTokenClassification.FromPretrained(GatewayFixture.Folder(GatewayFixture.Tagger));
        var expected = new TextClassifier(Gpt2Tokenizer.Default).ClassifyTokens(model, [text])[0];
        Assert.Equal(expected.Select(e => (e.TokenId, e.Label)), tokens.Select(t => (t.GetProperty("token_id").GetInt32(), t.GetProperty("label").GetString()!)));
    }

    [Theory]
    [InlineData("""{"model":"alpha","input":"hi"}""", "model")]
    [InlineData("""{"model":"sentiment"}""", "input")]
    [InlineData("""{"model":"sentiment","input":[""]}""", "input")]
    [InlineData("""{"model":"sentiment","input":42}""", "input")]
    public async Task A_model_without_a_head_or_a_bad_input_is_a_400(string body, string parameter)
    {
        using var client = fixture.Client();
        var response = await client.PostAsync("/v1/classifications", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(parameter, (await ReadError(response, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }
}
