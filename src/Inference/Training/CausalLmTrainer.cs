using Gpt2Orleans.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>One optimizer step's record: the mean training loss of its micro-batches and the learning rate it used.</summary>
public sealed record TrainingStep(int Step, double Loss, double LearningRate);

/// <summary>
/// Causal LM training of a <see cref="Gpt2LMHeadModel"/> with TorchSharp's autograd, <c>AdamW</c> (weight decay on all
/// weights but biases and LayerNorm parameters, as HF's Trainer), a <c>LambdaLR</c> schedule, gradient clipping and
/// gradient accumulation. Blocks are visited in an order shuffled per epoch from the seed, and libtorch's generator
/// (dropout) is seeded too, so a run repeats exactly. Each step runs in a dispose scope: no tensor outlives it.
/// </summary>
public static class CausalLmTrainer
{
    public static IReadOnlyList<TrainingStep> Train(Gpt2LMHeadModel model, long[][] blocks, TrainingArguments args, Action<TrainingStep>? onStep = null)
    {
        args.Validate();
        if (blocks.Length == 0) throw new ArgumentException("no training blocks", "train_file");
        torch.manual_seed(args.Seed);
        var random = new Random((int)(args.Seed & int.MaxValue));
        var order = new Queue<int>();
        var named = model.named_parameters().ToList();
        foreach (var (_, p) in named) p.requires_grad_(true);
        bool Decays(string name) => !name.EndsWith(".bias", StringComparison.Ordinal) && !name.Contains(".ln_", StringComparison.Ordinal) && !name.Contains("ln_f.", StringComparison.Ordinal);
        var groups = new[]
        {
            new TorchSharp.Modules.AdamW.ParamGroup(named.Where(p => Decays(p.name)).Select(p => p.parameter), args.LearningRate, 0.9, 0.999, 1e-8, args.WeightDecay, false, false),
            new TorchSharp.Modules.AdamW.ParamGroup(named.Where(p => !Decays(p.name)).Select(p => p.parameter), args.LearningRate, 0.9, 0.999, 1e-8, 0, false, false),
        };
        using var optimizer = torch.optim.AdamW(groups);
        var schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, args.LearningRateFactor);
        var steps = new List<TrainingStep>();
        model.train();
        try
        {
            for (int step = 1; step <= args.MaxSteps; step++)
            {
                double rate = args.LearningRate * args.LearningRateFactor(step - 1), loss = 0;
                for (int micro = 0; micro < args.GradientAccumulationSteps; micro++)
                {
                    using var scope = torch.NewDisposeScope();
                    var batch = Batch(Enumerable.Range(0, args.PerDeviceTrainBatchSize).Select(_ => blocks[Next(order, blocks.Length, random)]).ToArray(), model.Device);
                    using var output = model.forward(batch, labels: batch);
                    var scaled = output.Loss! / args.GradientAccumulationSteps;
                    scaled.backward();
                    loss += scaled.item<float>();
                }
                using (torch.NewDisposeScope()) // the gradients' handles the clipping and the step take
                {
                    if (args.MaxGradNorm > 0) torch.nn.utils.clip_grad_norm_(named.Select(p => p.parameter), args.MaxGradNorm);
                    optimizer.step();
                    schedule.step();
                    optimizer.zero_grad();
                }
                var record = new TrainingStep(step, loss, rate);
                steps.Add(record);
                onStep?.Invoke(record);
            }
        }
        finally
        {
            model.eval();
            foreach (var (_, p) in named) p.requires_grad_(false);
        }
        return steps;
    }

    /// <summary>The mean LM loss over <paramref name="blocks"/> in eval mode (no dropout, no graph).</summary>
    public static double Evaluate(Gpt2LMHeadModel model, long[][] blocks, int batchSize = 8)
    {
        if (blocks.Length == 0) throw new ArgumentException("no validation blocks", "validation_file");
        model.eval();
        double sum = 0;
        for (int start = 0; start < blocks.Length; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            var chunk = blocks.Skip(start).Take(batchSize).ToArray();
            var batch = Batch(chunk, model.Device);
            using var output = model.forward(batch, labels: batch);
            sum += output.Loss!.item<float>() * chunk.Length;
        }
        return sum / blocks.Length;
    }

    /// <summary>Blocks of one length as a (blocks, length) tensor of ids.</summary>
    private static Tensor Batch(long[][] blocks, Device device) =>
        torch.tensor(blocks.SelectMany(b => b).ToArray(), [blocks.Length, blocks[0].Length], device: device);

    /// <summary>The next block of the epoch (a fresh shuffled order when one ends).</summary>
    private static int Next(Queue<int> order, int count, Random random)
    {
        if (order.Count == 0)
        {
            var indices = Enumerable.Range(0, count).ToArray();
            random.Shuffle(indices);
            foreach (int i in indices) order.Enqueue(i);
        }
        return order.Dequeue();
    }
}
