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
        var results = new List<SequenceClassification>();
        foreach (var group in groups)
        {
            using var scope = torch.NewDisposeScope();
            var batch = Encode(group, config.PadTokenId ?? 0, config.NPositions);
            using var output = model.forward(batch.InputIdsTensor(model.Device), batch.AttentionMaskTensor(model.Device));
            var logits = output.Logits.to(ScalarType.Float32).cpu();
            var scores = logits.softmax(-1);
            for (int i = 0; i < group.Length; i++)
            {
                var row = logits[i].data<float>().ToArray();
                int best = Array.IndexOf(row, row.Max());
                results.Add(new SequenceClassification(row, scores[i].data<float>().ToArray(), config.Id2Label[best]));
            }
        }
        return results;
    }

    public IReadOnlyList<IReadOnlyList<TokenClassification>> ClassifyTokens(Gpt2ForTokenClassification model, IReadOnlyList<string> texts)
    {
        var config = model.Config;
        using var scope = torch.NewDisposeScope();
        var batch = Encode(texts, config.PadTokenId ?? tokenizer.EndOfTextId, config.NPositions);
        using var output = model.forward(batch.InputIdsTensor(model.Device), batch.AttentionMaskTensor(model.Device));
        var logits = output.Logits.to(ScalarType.Float32).cpu();
        var results = new List<IReadOnlyList<TokenClassification>>();
        for (int i = 0; i < texts.Count; i++)
        {
            var tokens = new List<TokenClassification>();
            for (int j = 0; j < batch.Length && batch.AttentionMask[i][j] == 1; j++)
            {
                var row = logits[i, j].data<float>().ToArray();
                int id = (int)batch.InputIds[i][j];
                tokens.Add(new TokenClassification(id, tokenizer.Decode([id]), row, config.Id2Label[Array.IndexOf(row, row.Max())]));
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
