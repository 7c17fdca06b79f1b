using Gpt2Orleans.Inference.Classification;
using Gpt2Orleans.Inference.Embeddings;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>Classification requests from many callers are batched together and answer exactly as HF does alone.</summary>
[Collection(GoldenCollection.Name)]
public sealed class OnePassEngineTests(GoldenData golden)
{
    [Fact]
    public async Task Concurrent_sequence_classifications_are_batched_and_match_hf()
    {
        using var engine = new OnePassEngine(golden.SeqCls, Gpt2Tokenizer.Default, maxBatchTokens: 256);
        var c = golden.Case("seq_cls_right_pad");
        var texts = c.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var expected = golden.Expected(c.GetProperty("expected").GetProperty("logits").GetString()!);

        // Submitted as fast as possible; that some share a forward pass is then all but certain, whatever the load.
        var requests = Enumerable.Range(0, 120).Select(i => engine.ClassifyAsync($"tenant{i % 3}", Gpt2Tokenizer.Default.Encode(texts[i % texts.Length]))).ToArray();
        var results = await Task.WhenAll(requests);
        for (int i = 0; i < results.Length; i++)
        {
            var row = expected[i % texts.Length].data<float>().ToArray();
            for (int k = 0; k < row.Length; k++) Assert.Equal(row[k], results[i].Logits[k], 1e-4);
        }
        Assert.InRange(engine.Batches, 1, 119); // at least some requests shared a forward pass
    }

    [Fact]
    public async Task Token_classification_matches_the_classifier_and_bad_input_is_rejected()
    {
        using var engine = new OnePassEngine(golden.TokenCls, Gpt2Tokenizer.Default);
        var ids = Gpt2Tokenizer.Default.Encode("Ada Lovelace was born in London");
        var tokens = await engine.ClassifyTokensAsync("t", ids);
        var reference = new TextClassifier(Gpt2Tokenizer.Default).ClassifyTokens(golden.TokenCls, ["Ada Lovelace was born in London"])[0];
        Assert.Equal(reference.Select(t => t.Label), tokens.Select(t => t.Label));
        Assert.Equal(reference.Select(t => t.Logits[0]), tokens.Select(t => t.Logits[0]));

        await Assert.ThrowsAsync<InvalidOperationException>(() => engine.ClassifyAsync("t", ids));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => engine.ClassifyTokensAsync("t", [60000]));
        await Assert.ThrowsAsync<ArgumentException>(() => engine.ClassifyTokensAsync("t", []));
    }

    [Theory]
    [InlineData(EmbeddingPooling.Mean)]
    [InlineData(EmbeddingPooling.Last)]
    public async Task Batched_embeddings_equal_each_text_s_own_pooled_hidden_states(EmbeddingPooling pooling)
    {
        // An LM checkpoint: any head's transformer embeds. Texts of different lengths share padded batches.
        using var engine = new OnePassEngine(golden.Lm(), Gpt2Tokenizer.Default, maxBatchTokens: 256);
        string[] texts = ["Hello there", "A somewhat longer text, padded in its batch", "x"];
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => engine.EmbedAsync($"t{i % 2}", Gpt2Tokenizer.Default.Encode(texts[i % 3]), pooling)));
        for (int i = 0; i < results.Length; i++)
        {
            using var scope = torch.NewDisposeScope();
            var ids = Gpt2Tokenizer.Default.Encode(texts[i % 3]);
            using var output = golden.Lm().transformer.forward(torch.tensor(ids.Select(id => (long)id).ToArray()).unsqueeze(0));
            var hidden = output.LastHiddenState[0];
            var expected = (pooling == EmbeddingPooling.Mean ? hidden.mean([0]) : hidden[^1]).data<float>().ToArray();
            Assert.Equal(expected.Length, results[i].Length);
            for (int k = 0; k < expected.Length; k++) Assert.Equal(expected[k], results[i][k], 1e-4);
        }
        Assert.InRange(engine.Batches, 1, 29);
        Assert.Throws<ArgumentException>(() => TextEmbedder.ParsePooling("max"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => engine.ClassifyAsync("t", [1, 2]));
    }
}
