using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Classification;

/// <summary>
/// Runs the classification heads on texts. Batches are right-padded with pad_token_id (as HF pools at the last
/// non-pad token); a model without a pad token classifies one text at a time, which HF cannot batch at all.
/// </summary>
public sealed class TextClassifier(Gpt2Tokenizer tokenizer)
{
    public IReadOnlyList<SequenceClassification> ClassifySequences(Gpt2ForSequenceClassification model, IReadOnlyList<string> texts)
    {
        var config = model.Config;
        var groups = config.PadTokenId is null ? texts.Select(t => new[] { t }).ToArray() : [texts.ToArray()];
        return groups.SelectMany(group => SequenceResults(model, Encode(group, config.PadTokenId ?? 0, config.NPositions))).ToList();
    }

    public IReadOnlyList<IReadOnlyList<TokenClassification>> ClassifyTokens(Gpt2ForTokenClassification model, IReadOnlyList<string> texts) =>
        TokenResults(model, Encode(texts, model.Config.PadTokenId ?? tokenizer.EndOfTextId, model.Config.NPositions), tokenizer);

    /// <summary>One forward pass of a right-padded batch through the sequence head: logits, softmax scores and label per row.</summary>
    public static IReadOnlyList<SequenceClassification> SequenceResults(Gpt2ForSequenceClassification model, BatchEncoding batch)
    {
        using var scope = torch.NewDisposeScope();
        using var output = model.forward(batch.InputIdsTensor(model.Device), batch.AttentionMaskTensor(model.Device));
        var logits = output.Logits.to(ScalarType.Float32).cpu();
        var scores = logits.softmax(-1);
        return Enumerable.Range(0, batch.BatchSize).Select(i =>
        {
            var row = logits[i].data<float>().ToArray();
            return new SequenceClassification(row, scores[i].data<float>().ToArray(), model.Config.Id2Label[Array.IndexOf(row, row.Max())]);
        }).ToList();
    }

    /// <summary>One forward pass of a right-padded batch through the token head: each real token's logits and label.</summary>
    public static IReadOnlyList<IReadOnlyList<TokenClassification>> TokenResults(Gpt2ForTokenClassification model, BatchEncoding batch, Gpt2Tokenizer tokenizer)
    {
        using var scope = torch.NewDisposeScope();
        using var output = model.forward(batch.InputIdsTensor(model.Device), batch.AttentionMaskTensor(model.Device));
        var logits = output.Logits.to(ScalarType.Float32).cpu();
        var results = new List<IReadOnlyList<TokenClassification>>();
        for (int i = 0; i < batch.BatchSize; i++)
        {
            var tokens = new List<TokenClassification>();
            for (int j = 0; j < batch.Length && batch.AttentionMask[i][j] == 1; j++)
            {
                var row = logits[i, j].data<float>().ToArray();
                int id = (int)batch.InputIds[i][j];
                tokens.Add(new TokenClassification(id, tokenizer.Decode([id]), row, model.Config.Id2Label[Array.IndexOf(row, row.Max())]));
            }
            results.Add(tokens);
        }
        return results;
    }

    private BatchEncoding Encode(IReadOnlyList<string> texts, int padTokenId, int maxLength)
    {
        if (texts.Count == 0) throw new ArgumentException("text: at least one text is needed", "text");
        var ids = texts.Select(t => tokenizer.Encode(t)).ToList();
        for (int i = 0; i < ids.Count; i++)
        {
            if (ids[i].Count == 0) throw new ArgumentException($"text {i} is empty", "text");
            if (ids[i].Count > maxLength) throw new ArgumentException($"text {i}: {ids[i].Count} tokens exceed the model's context of {maxLength}", "text");
        }
        return BatchEncoding.Pad(ids, padTokenId, PaddingSide.Right);
    }
}
