using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
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
        // What HF's save_pretrained writes for a model whose generation settings come from its config.
        var config = model.Config;
        var generation = new System.Text.Json.Nodes.JsonObject
        {
            ["_from_model_config"] = true, ["bos_token_id"] = config.BosTokenId,
            ["eos_token_id"] = config.EosTokenIds.Count == 1 ? config.EosTokenIds[0] : new System.Text.Json.Nodes.JsonArray(config.EosTokenIds.Select(i => (System.Text.Json.Nodes.JsonNode)i).ToArray()),
        };
        if (config.PadTokenId is { } pad) generation["pad_token_id"] = pad;
        File.WriteAllText(Path.Combine(directory, "generation_config.json"), generation.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }
}
