using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Scoring;
using Gpt2Orleans.Inference.Tokenization;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>
/// Token classification (<c>GPT2ForTokenClassification</c>): words labelled one by one, as HF's <c>run_ner</c> aligns
/// them (each word encoded with a leading space, its label on its first sub-token, −100 on the rest); evaluated by
/// loss, token-level accuracy and per-label F1 over the labelled sub-tokens.
/// </summary>
public sealed class TokenClassificationTask : TrainingTask<TaggedWords>
{
    public override string Name => "token-classification";
    public override string Architecture => "GPT2ForTokenClassification";
    protected override bool LabelsPerToken => true;

    public override Gpt2PreTrainedModel Create(Gpt2Config config, ScalarType dtype, Device device) => new Gpt2ForTokenClassification(config, dtype, device);

    protected override List<TaggedWords> Read(string path) => TaggedWords.Read(path);
    protected override IEnumerable<string> LabelsOf(TaggedWords record) => record.Labels;
    protected override IReadOnlyList<TrainingExample> Encode(IReadOnlyList<TaggedWords> records, DataOptions options, LabelSet? labels) =>
        Examples(records, options.Tokenizer, labels!, options.BlockSize);

    public static IReadOnlyList<TrainingExample> Examples(IReadOnlyList<TaggedWords> sentences, Gpt2Tokenizer tokenizer, LabelSet labels, int maxLength) =>
        sentences.Select((s, i) =>
        {
            var ids = new List<long>();
            var tags = new List<long>();
            for (int w = 0; w < s.Words.Count; w++)
            {
                var pieces = tokenizer.Encode(" " + s.Words[w]);
                for (int p = 0; p < pieces.Count; p++)
                {
                    ids.Add(pieces[p]);
                    tags.Add(p == 0 ? labels.Id(s.Labels[w]) : Losses.IgnoreIndex);
                }
            }
            if (ids.Count == 0) throw new ArgumentException($"example {i + 1} has no tokens", "file");
            return new TrainingExample(ids.Take(maxLength).ToArray(), tags.Take(maxLength).ToArray());
        }).ToList();

    public override Tensor Loss(Gpt2PreTrainedModel model, TrainingBatch batch)
    {
        var output = ((Gpt2ForTokenClassification)model).forward(batch.InputIds, batch.AttentionMask, labels: batch.Labels);
        output.Logits.Dispose();
        return output.Loss!;
    }

    public override IReadOnlyDictionary<string, double> Evaluate(Gpt2PreTrainedModel model, IReadOnlyList<TrainingExample> examples, int batchSize)
    {
        var predicted = new List<int>();
        var actual = new List<int>();
        double sum = 0;
        long labelled = 0;
        ForEachBatch(model, examples, batchSize, (chunk, batch) =>
        {
            using var output = ((Gpt2ForTokenClassification)model).forward(batch.InputIds, batch.AttentionMask, labels: batch.Labels);
            var best = output.Logits.argmax(-1).data<long>().ToArray();
            var gold = batch.Labels.data<long>().ToArray();
            long count = gold.Count(g => g != Losses.IgnoreIndex);
            if (count > 0) sum += output.Loss!.item<float>() * count;
            labelled += count;
            for (int i = 0; i < gold.Length; i++)
                if (gold[i] != Losses.IgnoreIndex) { predicted.Add((int)best[i]); actual.Add((int)gold[i]); }
        });
        if (labelled == 0) throw new ArgumentException("the validation examples carry no labels (all cut by the block size?)", "validation_file");
        var metrics = ClassificationMetrics.Compute(predicted, actual, Labels(model));
        return Metrics(sum / labelled, metrics);
    }
}
