using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;
using Gpt2Orleans.Inference.Training;
using TorchSharp;

namespace Gpt2Orleans.Inference.Tests.Training;

/// <summary>A tiny GPT-2 trained from scratch for a few dozen steps on a small synthetic corpus (alone: dropout draws from libtorch's global generator).</summary>
[Collection(RunsAloneCollection.Name)]
public sealed class CausalLmTrainerTests
{
    private static readonly Gpt2Config Tiny = Gpt2Config.Default with { NEmbd = 32, NHead = 2, NLayer = 2, NPositions = 64 };
    private static readonly TrainingArguments Args = new()
    {
        MaxSteps = 40, PerDeviceTrainBatchSize = 4, GradientAccumulationSteps = 2, LearningRate = 3e-3, WarmupSteps = 4, WeightDecay = 0.01, Seed = 5,
    };

    /// <summary>Sentences from a small grammar: learnable structure, with held-out sentences from the same grammar.</summary>
    private static (long[][] Train, long[][] Validation) Corpus()
    {
        var random = new Random(3);
        string[] subjects = ["the cat", "a dog", "my friend", "the old man", "a small bird"], verbs = ["sees", "likes", "follows", "finds"],
            objects = ["the ball", "a red box", "the garden", "some bread", "the river"];
        string Sentence() => $"{subjects[random.Next(subjects.Length)]} {verbs[random.Next(verbs.Length)]} {objects[random.Next(objects.Length)]}.";
        var documents = Enumerable.Range(0, 400).Select(_ => string.Join(" ", Enumerable.Range(0, 3).Select(_ => Sentence()))).ToList();
        var tokenizer = Gpt2Tokenizer.Default;
        return (LmBlocks.Split(TextDocuments.Join(documents[..340], tokenizer), 32, Tiny.NPositions),
                LmBlocks.Split(TextDocuments.Join(documents[340..], tokenizer), 32, Tiny.NPositions));
    }

    [Fact]
    public void Training_lowers_the_validation_loss_repeats_exactly_with_its_seed_and_leaves_no_tensor_behind()
    {
        var (train, validation) = Corpus();
        using var model = Gpt2LMHeadModel.CreateRandom(Tiny, seed: 1);
        double before = CausalLmTrainer.Evaluate(model, validation);
        long liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var steps = CausalLmTrainer.Train(model, train, Args);
        long liveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        double after = CausalLmTrainer.Evaluate(model, validation);
        Assert.Equal(Args.MaxSteps, steps.Count);
        Assert.True(after < before - 3, $"validation loss {before:F3} → {after:F3}: it should fall by more than 3 nats");
        Assert.True(steps[^1].Loss < steps[0].Loss - 3, $"training loss {steps[0].Loss:F3} → {steps[^1].Loss:F3}");
        Assert.False(model.training, "the model is back in eval mode");
        // The optimizer's state and the parameters' gradients are freed with the run; each step's temporaries with the step.
        Assert.True(liveAfter - liveBefore <= 0, $"{liveAfter - liveBefore} tensors outlived the training run");

        using var again = Gpt2LMHeadModel.CreateRandom(Tiny, seed: 1);
        Assert.Equal(steps.Select(s => s.Loss), CausalLmTrainer.Train(again, train, Args).Select(s => s.Loss));
        using var other = Gpt2LMHeadModel.CreateRandom(Tiny, seed: 1);
        Assert.NotEqual(steps.Select(s => s.Loss), CausalLmTrainer.Train(other, train, Args with { Seed = 6 }).Select(s => s.Loss));
    }

    [Fact]
    public void The_schedules_follow_hfs_formulas_and_bad_arguments_name_themselves()
    {
        var linear = new TrainingArguments { MaxSteps = 10, WarmupSteps = 2 };
        Assert.Equal([0, 0.5, 1, 0.875, 0.5, 0.125, 0], new[] { 0, 1, 2, 3, 6, 9, 10 }.Select(linear.LearningRateFactor));
        var cosine = linear with { LrSchedulerType = "cosine" };
        Assert.Equal(0.5, cosine.LearningRateFactor(6), 12);
        Assert.Equal(1, (linear with { LrSchedulerType = "constant" }).LearningRateFactor(9));
        Assert.Equal("warmup_steps", Assert.Throws<ArgumentException>(() => (linear with { WarmupSteps = 11 }).Validate()).ParamName);
        Assert.Equal("lr_scheduler_type", Assert.Throws<ArgumentException>(() => (linear with { LrSchedulerType = "step" }).Validate()).ParamName);
        Assert.Equal("block_size", Assert.Throws<ArgumentException>(() => LmBlocks.Split([1, 2, 3], 65, 64)).ParamName);
        Assert.Equal("block_size", Assert.Throws<ArgumentException>(() => LmBlocks.Split([1, 2, 3], 4, 64)).ParamName);
    }
}
