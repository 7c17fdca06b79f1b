using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Scoring;
using Gpt2Orleans.Inference.Tokenization;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>Sequence classification (<c>GPT2ForSequenceClassification</c>): one label per text, pooled at its last token; evaluated by loss, accuracy and F1.</summary>
public sealed class SequenceClassificationTask : TrainingTask<LabeledText>
{
    public override string Name => "sequence-classification";
    public override string Architecture => "GPT2ForSequenceClassification";
    protected override bool LabelsPerToken => false;

    public override Gpt2PreTrainedModel Create(Gpt2Config config, ScalarType dtype, Device device) => new Gpt2ForSequenceClassification(config, dtype, device);

    protected override List<LabeledText> Read(string path) => LabeledText.Read(path);
    protected override IEnumerable<string> LabelsOf(LabeledText record) => [record.Label];
    protected override IReadOnlyList<TrainingExample> Encode(IReadOnlyList<LabeledText> records, DataOptions options, LabelSet? labels) =>
        Examples(records, options.Tokenizer, labels!, options.BlockSize);

    /// <summary>Each text's ids (truncated to <paramref name="maxLength"/>, as HF's run_glue truncates) and its label's index.</summary>
    public static IReadOnlyList<TrainingExample> Examples(IReadOnlyList<LabeledText> texts, Gpt2Tokenizer tokenizer, LabelSet labels, int maxLength) =>
        texts.Select((t, i) =>
        {
            var ids = tokenizer.Encode(t.Text).Take(maxLength).Select(id => (long)id).ToArray();
            if (ids.Length == 0) throw new ArgumentException($"example {i + 1} has an empty text", "file");
            return new TrainingExample(ids, [labels.Id(t.Label)]);
        }).ToList();

    public override Tensor Loss(Gpt2PreTrainedModel model, TrainingBatch batch)
    {
        var output = ((Gpt2ForSequenceClassification)model).forward(batch.InputIds, batch.AttentionMask, labels: batch.Labels);
        output.Logits.Dispose();
        return output.Loss!;
    }

    public override IReadOnlyDictionary<string, double> Evaluate(Gpt2PreTrainedModel model, IReadOnlyList<TrainingExample> examples, int batchSize)
    {
        var predicted = new List<int>();
        double sum = 0;
        ForEachBatch(model, examples, batchSize, (chunk, batch) =>
        {
            using var output = ((Gpt2ForSequenceClassification)model).forward(batch.InputIds, batch.AttentionMask, labels: batch.Labels);
            sum += output.Loss!.item<float>() * chunk.Count;
            predicted.AddRange(output.Logits.argmax(-1).data<long>().Select(p => (int)p));
        });
        var metrics = ClassificationMetrics.Compute(predicted, examples.Select(e => (int)e.Labels[0]).ToList(), Labels(model));
        return Metrics(sum / examples.Count, metrics);
    }
}
