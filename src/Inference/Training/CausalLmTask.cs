using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>Causal language modelling (<c>GPT2LMHeadModel</c>): documents joined and cut into blocks as HF's <c>run_clm</c>; evaluated by loss and perplexity.</summary>
public sealed class CausalLmTask : TrainingTask<string>
{
    public override string Name => "causal-lm";
    public override string Architecture => "GPT2LMHeadModel";
    protected override bool LabelsPerToken => true;

    public override Gpt2PreTrainedModel Create(Gpt2Config config, ScalarType dtype, Device device) => new Gpt2LMHeadModel(config, dtype, device);

    protected override List<string> Read(string path) => TextDocuments.Read(path).ToList();
    protected override IEnumerable<string> LabelsOf(string record) => [];
    protected override IReadOnlyList<TrainingExample> Encode(IReadOnlyList<string> records, DataOptions options, LabelSet? labels) =>
        Examples(records, options.Tokenizer, options.BlockSize, options.NPositions);

    public static IReadOnlyList<TrainingExample> Examples(IReadOnlyList<string> documents, Gpt2Tokenizer tokenizer, int blockSize, int nPositions) =>
        LmBlocks.Split(TextDocuments.Join(documents, tokenizer), blockSize, nPositions).Select(b => new TrainingExample(b, b)).ToList();

    public override Tensor Loss(Gpt2PreTrainedModel model, TrainingBatch batch)
    {
        var output = ((Gpt2LMHeadModel)model).forward(batch.InputIds, batch.AttentionMask, labels: batch.Labels);
        output.Logits.Dispose();
        output.Transformer.Dispose();
        return output.Loss!;
    }

    /// <summary>
    /// HF's shifted cross-entropy, back-propagated one example row at a time through the LM head: the body runs once, its
    /// output is detached, and each row's (T, V) logits are made, scored, back-propagated and freed before the next,
    /// so the batch's (B, T, V) logits (hundreds of MB at GPT-2's vocabulary) are never held, allocated or paged in at
    /// once; the head's gradients sum into the detached output's, which then flow through the body. The same
    /// gradients as <see cref="TrainingTask.Backward"/>'s (tested).
    /// </summary>
    public override double Backward(Gpt2PreTrainedModel model, TrainingBatch batch, double scale)
    {
        var lm = (Gpt2LMHeadModel)model;
        using var scope = torch.NewDisposeScope();
        using var output = lm.transformer.forward(batch.InputIds, batch.AttentionMask);
        var hidden = output.LastHiddenState;
        var detached = hidden.detach().requires_grad_(true);
        long rows = batch.InputIds.shape[0], length = batch.InputIds.shape[1];
        var targets = batch.Labels.narrow(1, 1, length - 1);
        long counted = targets.ne(Losses.IgnoreIndex).sum().item<long>();
        if (counted == 0) return 0;
        double total = 0;
        for (long r = 0; r < rows; r++)
        {
            using var rowScope = torch.NewDisposeScope();
            var logits = lm.Logits(detached.narrow(0, r, 1).narrow(1, 0, length - 1)).reshape(length - 1, -1);
            var sum = nn.functional.cross_entropy(Losses.Upcast(logits), targets[r], ignore_index: Losses.IgnoreIndex, reduction: nn.Reduction.Sum);
            var part = sum * (scale / counted);
            part.backward();
            total += part.ToDouble();
        }
        hidden.backward([detached.grad!]);
        return total;
    }

    /// <summary>The token-weighted mean loss (every block predicts its length − 1 tokens) and its exponential.</summary>
    public override IReadOnlyDictionary<string, double> Evaluate(Gpt2PreTrainedModel model, IReadOnlyList<TrainingExample> examples, int batchSize)
    {
        double sum = 0;
        long predicted = 0;
        ForEachBatch(model, examples, batchSize, (chunk, batch) =>
        {
            long count = chunk.Sum(e => e.InputIds.Length - 1L);
            sum += Loss(model, batch).item<float>() * count;
            predicted += count;
        });
        double loss = sum / predicted;
        return new Dictionary<string, double> { ["eval_loss"] = loss, ["eval_perplexity"] = Math.Exp(loss) };
    }

    public override void SavePretrained(Gpt2PreTrainedModel model, Gpt2Tokenizer tokenizer, string directory)
    {
        base.SavePretrained(model, tokenizer, directory);
        File.WriteAllText(Path.Combine(directory, "generation_config.json"), model.Config.GenerationConfigJson());
    }
}
