using Gpt2Orleans.Grains.Tests.Support;
using Gpt2Orleans.Inference.Classification;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>Classification models served by their silos' model workers give what the inference library gives.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClassificationTests(ClusterFixture fixture)
{
    private IModelGrain Worker(string model)
    {
        int instance = Array.FindIndex(ClusterFixture.Served, served => served.Contains(model));
        return fixture.Client.GetGrain<IModelGrain>(GrainKeys.ModelWorker(model, fixture.Cluster.Silos[instance].SiloAddress.ToParsableString()));
    }

    [Fact]
    public async Task Sequence_classification_gives_the_library_s_labels_and_scores()
    {
        string[] texts = ["What a wonderful film", "Terrible, boring and far too long", "ok"];
        var results = await Worker(ClusterFixture.Sentiment).Classify("t", texts);

        using var model = Gpt2ForSequenceClassification.FromPretrained(ClusterFixture.SentimentFolder);
        var expected = new TextClassifier(Gpt2Tokenizer.Default).ClassifySequences(model, texts);
        Assert.Equal(expected.Select(e => e.Label), results.Select(r => r.Label));
        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(expected[i].Scores.Select(s => (double)s), results[i].Scores.Select(s => s.Score), (a, b) => Math.Abs(a - b) < 1e-5);
        Assert.Equal(model.Config.Id2Label.OrderBy(p => p.Key).Select(p => p.Value), results[0].Scores.Select(s => s.Label));
    }

    [Fact]
    public async Task Token_classification_labels_every_token()
    {
        const string text = "Ada Lovelace was born in London";
        var labels = await Worker(ClusterFixture.Tagger).ClassifyTokens("t", text);
        using var model = Gpt2ForTokenClassification.FromPretrained(ClusterFixture.TaggerFolder);
        var expected = new TextClassifier(Gpt2Tokenizer.Default).ClassifyTokens(model, [text])[0];
        Assert.Equal(expected.Select(e => (e.TokenId, e.Label)), labels.Select(l => (l.TokenId, l.Label)));
        Assert.All(labels, l => Assert.InRange(l.Score, 0, 1));
    }

    [Fact]
    public async Task Asking_a_model_for_what_its_head_cannot_do_is_a_clear_error()
    {
        var generate = await Assert.ThrowsAsync<InvalidRequestException>(async () =>
        {
            await foreach (var _ in Worker(ClusterFixture.Sentiment).Generate(new ModelRequest { Tenant = "t", PromptIds = [464] })) { }
        });
        Assert.Contains("does not generate", generate.Message);
        var classify = await Assert.ThrowsAsync<InvalidRequestException>(() => Worker(ClusterFixture.Alpha).Classify("t", ["hello"]));
        Assert.Contains("does not classify", classify.Message);
        Assert.Equal(["sequence-classification"], (await fixture.Client.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).GetModel(ClusterFixture.Sentiment)).Definition.Heads);
    }
}
