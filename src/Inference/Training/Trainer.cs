using System.Diagnostics;
using System.Text.Json.Nodes;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>
/// HF's <c>Trainer</c> loop for any <see cref="TrainingTask"/>, on TorchSharp's autograd: <c>AdamW</c> (weight decay
/// on all weights but biases and LayerNorm parameters), a <c>LambdaLR</c> schedule from <see cref="TrainingArguments"/>,
/// gradient clipping and accumulation, logging, evaluation and checkpoints. The examples are visited in an order
/// shuffled per epoch from the seed (a pure function of the step, so a resumed run sees the same batches) and
/// libtorch's generator (dropout) is seeded and checkpointed: a run repeats exactly, and so does a resumed one.
/// Every step runs in dispose scopes: no tensor outlives it.
/// </summary>
public sealed class Trainer(TrainingTask task, Gpt2PreTrainedModel model, Gpt2Tokenizer tokenizer, TrainingArguments args, string? outputDir = null)
{
    public TrainingResult Train(IReadOnlyList<TrainingExample> train, IReadOnlyList<TrainingExample>? validation = null,
        string? resumeFromCheckpoint = null, TrainerEvents? events = null, CancellationToken cancel = default)
    {
        if (model.Quantization is { } quantization)
            throw new ArgumentException($"the model's weights are quantized ({quantization.Name}): train the dense checkpoint, then quantize it", "model");
        var run = args.ForDataset(train.Count);
        events ??= new TrainerEvents();
        if (run.SaveSteps > 0 && outputDir is null) throw new ArgumentException("save_steps needs an output_dir to write checkpoints into", "output_dir");
        torch.manual_seed(run.Seed);
        var named = model.named_parameters().ToList();
        bool Decays(string name) => !name.EndsWith(".bias", StringComparison.Ordinal) && !Gpt2Initializer.IsLayerNorm(name);
        TorchSharp.Modules.AdamW.ParamGroup Group(bool decay) => new(named.Where(p => Decays(p.name) == decay).Select(p => p.parameter),
            run.LearningRate, run.AdamBeta1, run.AdamBeta2, run.AdamEpsilon, decay ? run.WeightDecay : 0, false, false);
        using var optimizer = torch.optim.AdamW([Group(true), Group(false)]);
        var schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, run.LearningRateFactor);

        int start = 0;
        var history = new JsonArray();
        if (resumeFromCheckpoint is not null)
        {
            var state = TrainerCheckpoint.Restore(resumeFromCheckpoint, optimizer);
            if (state.TrainExamples != train.Count)
                throw new ArgumentException($"'{resumeFromCheckpoint}' was trained on {state.TrainExamples} examples, this run has {train.Count}: resume with the same data", "resume_from_checkpoint");
            start = state.GlobalStep;
            history = state.LogHistory;
            for (int i = 0; i < start; i++) schedule.step(); // the schedule is a function of the step: replay it
        }

        using var mixed = run.Bf16 ? new Bf16Copy(task, model) : null;
        var trainee = mixed?.Working ?? model;
        var sampler = new EpochSampler(train.Count, run.Seed);
        long sample = (long)start * run.PerDeviceTrainBatchSize * run.GradientAccumulationSteps;
        var steps = new List<TrainingStep>();
        IReadOnlyDictionary<string, double>? evaluation = null;
        double epochsPerStep = run.EpochsPerStep(train.Count), windowLoss = 0;
        int windowSteps = 0;
        long windowTokens = 0, tokens = 0;
        var clock = Stopwatch.StartNew();
        var window = Stopwatch.StartNew();

        void Evaluate(int step)
        {
            if (validation is null || validation.Count == 0) return;
            evaluation = task.Evaluate(model, validation, run.PerDeviceEvalBatchSize);
            var log = new EvaluationLog(step, step * epochsPerStep, evaluation);
            history.Add(log.ToJson());
            events.OnEvaluate?.Invoke(log);
        }

        foreach (var (_, p) in named) p.requires_grad_(true);
        model.train();
        trainee.train();
        try
        {
            for (int step = start + 1; step <= run.MaxSteps; step++)
            {
                cancel.ThrowIfCancellationRequested();
                double rate = run.LearningRate * run.LearningRateFactor(step - 1), loss = 0;
                long stepTokens = 0;
                mixed?.CopyWeights();
                for (int micro = 0; micro < run.GradientAccumulationSteps; micro++)
                {
                    using var scope = torch.NewDisposeScope();
                    var examples = Enumerable.Range(0, run.PerDeviceTrainBatchSize).Select(_ => train[sampler.At(sample++)]).ToList();
                    using var batch = task.Batch(trainee, examples);
                    loss += task.Backward(trainee, batch, 1.0 / run.GradientAccumulationSteps);
                    stepTokens += batch.Tokens;
                    mixed?.AccumulateGradients();
                }
                if (!double.IsFinite(loss)) throw new InvalidOperationException($"the training loss is {loss} at step {step}: lower the learning rate (or use fp32)");
                using (torch.NewDisposeScope()) // the gradients' handles the clipping and the step take
                {
                    if (run.MaxGradNorm > 0) torch.nn.utils.clip_grad_norm_(named.Select(p => p.parameter), run.MaxGradNorm);
                    optimizer.step();
                    schedule.step();
                    optimizer.zero_grad();
                }
                var record = new TrainingStep(step, loss, rate, stepTokens);
                steps.Add(record);
                tokens += stepTokens;
                events.OnStep?.Invoke(record);

                windowLoss += loss;
                windowSteps++;
                windowTokens += stepTokens;
                if (step % run.LoggingSteps == 0 || step == run.MaxSteps)
                {
                    var log = new TrainingLog(step, step * epochsPerStep, windowLoss / windowSteps, rate, windowTokens / Math.Max(1e-9, window.Elapsed.TotalSeconds));
                    history.Add(log.ToJson());
                    events.OnLog?.Invoke(log);
                    (windowLoss, windowSteps, windowTokens) = (0, 0, 0);
                    window.Restart();
                }
                if (run.EvalSteps > 0 && step % run.EvalSteps == 0 && step != run.MaxSteps) Evaluate(step);
                if (run.SaveSteps > 0 && step % run.SaveSteps == 0)
                {
                    string saved = TrainerCheckpoint.Save(outputDir!, task, model, tokenizer, optimizer,
                        new TrainerCheckpoint.State(step, run.MaxSteps, train.Count, history), run.SaveTotalLimit);
                    events.OnSave?.Invoke(saved);
                }
            }
        }
        finally
        {
            model.eval();
            trainee.eval();
            foreach (var (_, p) in named) p.requires_grad_(false);
        }
        Evaluate(run.MaxSteps);
        return new TrainingResult(steps, run.MaxSteps, evaluation, clock.Elapsed.TotalSeconds, tokens);
    }

    /// <summary>The example at a position of the endless sample stream: epoch e visits every example once, in an order shuffled from (seed, e).</summary>
    private sealed class EpochSampler(int count, long seed)
    {
        private long _epoch = -1;
        private int[] _order = [];

        public int At(long position)
        {
            long epoch = position / count;
            if (epoch != _epoch)
            {
                _order = Enumerable.Range(0, count).ToArray();
                new Random(unchecked((int)(seed * 1_000_003 + epoch))).Shuffle(_order);
                _epoch = epoch;
            }
            return _order[position % count];
        }
    }

    /// <summary>
    /// bf16 mixed precision without autocast (TorchSharp has none): a bfloat16 working copy of the model runs the
    /// forward and backward; its gradients are added into the fp32 master weights' gradients after each micro-batch,
    /// and the optimizer steps the master weights, which are copied back before the next step (Apex's O2 recipe).
    /// </summary>
    private sealed class Bf16Copy : IDisposable
    {
        public Gpt2PreTrainedModel Working { get; }
        private readonly List<(TorchSharp.Modules.Parameter Master, TorchSharp.Modules.Parameter Copy)> _pairs;

        public Bf16Copy(TrainingTask task, Gpt2PreTrainedModel master)
        {
            Working = task.Create(master.Config, ScalarType.BFloat16, master.Device);
            var copies = Working.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            _pairs = master.named_parameters().Select(p => (p.parameter, copies[p.name])).ToList();
            foreach (var (_, copy) in _pairs) copy.requires_grad_(true);
        }

        public void CopyWeights()
        {
            using var noGrad = torch.no_grad();
            foreach (var (master, copy) in _pairs) copy.copy_(master);
        }

        public void AccumulateGradients()
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            foreach (var (master, copy) in _pairs)
            {
                if (copy.grad is not { } grad) continue;
                if (master.grad is { } sum) sum.add_(grad.to(ScalarType.Float32));
                else master.grad = grad.to(ScalarType.Float32); // the parameter holds its own reference
                grad.zero_();
            }
        }

        public void Dispose() => Working.Dispose();
    }
}
