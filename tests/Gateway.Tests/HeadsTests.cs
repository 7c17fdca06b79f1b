using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.QuestionAnswering;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>A silo serving a question-answering and a double-heads model (tiny, random weights with the golden LM's config).</summary>
public sealed class HeadsFixture : GatewayFixture
{
    public const string Reader = "reader", Chooser = "chooser";
    public static readonly string Root = Path.Combine(Path.GetTempPath(), "gpt2o-heads-" + Guid.NewGuid().ToString("N"));
    public static string ReaderFolder => Path.Combine(Root, Reader);
    public static string ChooserFolder => Path.Combine(Root, Chooser);

    public HeadsFixture()
    {
        var config = Gpt2Config.FromFile(Path.Combine(ModelFolder, "config.json"));
        using (var reader = Gpt2Initializer.CreateRandom(config, 11, null, (c, d, device) => new Gpt2ForQuestionAnswering(c, d, device))) reader.SavePretrained(ReaderFolder);
        using (var chooser = Gpt2Initializer.CreateRandom(config, 12, null, (c, d, device) => new Gpt2DoubleHeadsModel(c, d, device))) chooser.SavePretrained(ChooserFolder);
    }

    protected override IEnumerable<string> SiloArguments =>
        ["--model", $"{Model}={ModelFolder}", "--model", $"{Reader}={ReaderFolder}", "--model", $"{Chooser}={ChooserFolder}"];

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// Question answering and multiple choice over real HTTP: the span is the best one computed by hand from the
/// library's own start/end logits, and the choice logits are the library's mc_logits for the choices as one example.
/// </summary>
public sealed class HeadsTests(HeadsFixture fixture) : IClassFixture<HeadsFixture>
{
    [Fact]
    public async Task The_answer_is_the_best_valid_span_of_the_context()
    {
        const string question = "Where was Ada born?", context = "Ada Lovelace was born in London in 1815, and she wrote the first program.";
        using var client = fixture.Client();
        var body = await ReadJson(await client.PostAsync("/v1/question-answering", Json(new { model = HeadsFixture.Reader, question, context, max_answer_len = 5 })));

        // By hand: the library's logits, softmax over the context tokens, every span of at most 5 tokens.
        using var model = Gpt2ForQuestionAnswering.FromPretrained(HeadsFixture.ReaderFolder);
        var tokenizer = Gpt2Tokenizer.Default;
        var q = tokenizer.Encode(question);
        var c = tokenizer.Encode(context);
        using var scope = torch.NewDisposeScope();
        using var output = model.forward(torch.tensor(q.Concat(c).Select(i => (long)i).ToArray()).unsqueeze(0));
        var start = output.StartLogits[0].data<float>().Skip(q.Count).Select(v => (double)v).ToArray();
        var end = output.EndLogits[0].data<float>().Skip(q.Count).Select(v => (double)v).ToArray();
        double zs = start.Sum(v => Math.Exp(v)), ze = end.Sum(v => Math.Exp(v));
        (int S, int E, double P) best = (0, 0, -1);
        for (int s = 0; s < c.Count; s++)
            for (int e = s; e < c.Count && e - s < 5; e++)
                if (Math.Exp(start[s]) / zs * Math.Exp(end[e]) / ze is var p && p > best.P) best = (s, e, p);
        string expected = tokenizer.Decode(c.Skip(best.S).Take(best.E - best.S + 1)).Trim();

        Assert.Equal(expected, body.GetProperty("answer").GetString());
        Assert.Equal(best.P, body.GetProperty("score").GetDouble(), 1e-5);
        int from = body.GetProperty("start").GetInt32(), to = body.GetProperty("end").GetInt32();
        Assert.Equal(expected, context[from..to]);
    }

    [Fact]
    public async Task Choice_scores_are_the_models_mc_logits()
    {
        string[] choices = ["The cat sat on the mat.", "A dog barked at the moon all night", "Hi"];
        using var client = fixture.Client();
        var body = await ReadJson(await client.PostAsync("/v1/multiple-choice", Json(new { model = HeadsFixture.Chooser, choices })));

        using var model = Gpt2DoubleHeadsModel.FromPretrained(HeadsFixture.ChooserFolder);
        var ids = choices.Select(Gpt2Tokenizer.Default.Encode).ToList();
        var batch = BatchEncoding.Pad(ids, Gpt2Tokenizer.Default.EndOfTextId, PaddingSide.Right);
        using var scope = torch.NewDisposeScope();
        using var output = model.forward(batch.InputIdsTensor(torch.CPU).unsqueeze(0), torch.tensor(ids.Select(i => (long)i.Count - 1).ToArray()).unsqueeze(0),
            batch.AttentionMaskTensor(torch.CPU).unsqueeze(0));
        var expected = output.McLogits[0].data<float>().ToArray();

        var data = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(expected.Length, data.Count);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], data[i].GetProperty("logit").GetSingle(), 1e-4f);
        Assert.Equal(Array.IndexOf(expected, expected.Max()), body.GetProperty("best").GetInt32());
        Assert.Equal(1.0, data.Sum(d => d.GetProperty("score").GetDouble()), 1e-6);
    }

    [Fact]
    public async Task A_request_for_the_wrong_head_or_with_bad_fields_is_a_400()
    {
        using var client = fixture.Client();
        async Task<string?> Param(string path, object body) =>
            (await ReadError(await client.PostAsync(path, Json(body)), HttpStatusCode.BadRequest)).GetProperty("param").GetString();
        Assert.Equal("model", await Param("/v1/question-answering", new { model = GatewayFixture.Model, question = "q", context = "c" }));
        Assert.Equal("model", await Param("/v1/multiple-choice", new { model = HeadsFixture.Reader, choices = new[] { "a", "b" } }));
        Assert.Equal("context", await Param("/v1/question-answering", new { model = HeadsFixture.Reader, question = "q" }));
        Assert.Equal("max_answer_len", await Param("/v1/question-answering", new { model = HeadsFixture.Reader, question = "q", context = "c", max_answer_len = 0 }));
        Assert.Equal("context", await Param("/v1/question-answering", new { model = HeadsFixture.Reader, question = "q", context = string.Join(" ", Enumerable.Repeat("word", 300)) }));
        Assert.Equal("choices", await Param("/v1/multiple-choice", new { model = HeadsFixture.Chooser, choices = new[] { "only one" } }));
        Assert.Equal("choices", await Param("/v1/multiple-choice", new { model = HeadsFixture.Chooser, choices = new[] { "a", "" } }));
        // The catalog lists each model's head.
        var models = await ReadJson(await client.GetAsync("/v1/models"));
        var heads = models.GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!, m => m.GetProperty("heads")[0].GetString());
        Assert.Equal("question-answering", heads[HeadsFixture.Reader]);
        Assert.Equal("multiple-choice", heads[HeadsFixture.Chooser]);
    }
}
