using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;
using Gpt2Orleans.Inference.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Training;

/// <summary>Tiny GPT-2s trained from scratch for a few dozen steps on small synthetic corpora (alone: dropout draws from libtorch's global generator).</summary>
[Collection(RunsAloneCollection.Name)]
public sealed class TrainerTests : IDisposable
{
    private static readonly Gpt2Config Tiny = Gpt2Config.Default with { NEmbd = 32, NHead = 2, NLayer = 2, NPositions = 64 };
    private static readonly TrainingArguments Args = new()
    {
        MaxSteps = 40, PerDeviceTrainBatchSize = 4, GradientAccumulationSteps = 2, LearningRate = 3e-3, WarmupSteps = 4, WeightDecay = 0.01, Seed = 5,
    };
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;
    private static readonly CausalLmTask Lm = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("gpt2o-train-").FullName;

    private static readonly string[] Subjects = ["the cat", "a dog", "my friend", "the old man", "a small bird"], Verbs = ["sees", "likes", "follows", "finds"],
        Objects = ["the ball", "a red box", "the garden", "some bread", "the river"];

    /// <summary>Sentences from a small grammar: learnable structure, with held-out sentences from the same grammar.</summary>
    private static (IReadOnlyList<TrainingExample> Train, IReadOnlyList<TrainingExample> Validation) Corpus()
    {
        var random = new Random(3);
        string Sentence() => $"{Subjects[random.Next(Subjects.Length)]} {Verbs[random.Next(Verbs.Length)]} {Objects[random.Next(Objects.Length)]}.";
        var documents = Enumerable.Range(0, 400).Select(_ => string.Join(" ", Enumerable.Range(0, 3).Select(_ => Sentence()))).ToList();
        return (CausalLmTask.Examples(documents[..340], Tokenizer, 32, Tiny.NPositions), CausalLmTask.Examples(documents[340..], Tokenizer, 32, Tiny.NPositions));
    }

    private static Gpt2PreTrainedModel RandomModel(TrainingTask task, Gpt2Config config) => task.CreateRandom(config, seed: 1, new ModelLoadOptions());

    private static double EvalLoss(TrainingTask task, Gpt2PreTrainedModel model, IReadOnlyList<TrainingExample> examples) => task.Evaluate(model, examples, 8)["eval_loss"];

    [Fact]
    public void Training_lowers_the_validation_loss_repeats_exactly_with_its_seed_and_leaves_no_tensor_behind()
    {
        var (train, validation) = Corpus();
        using var model = RandomModel(Lm, Tiny);
        double before = EvalLoss(Lm, model, validation);
        long liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var steps = new Trainer(Lm, model, Tokenizer, Args).Train(train).Steps;
        long liveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        double after = EvalLoss(Lm, model, validation);
        Assert.Equal(Args.MaxSteps, steps.Count);
        Assert.True(after < before - 3, $"validation loss {before:F3} → {after:F3}: it should fall by more than 3 nats");
        Assert.True(steps[^1].Loss < steps[0].Loss - 3, $"training loss {steps[0].Loss:F3} → {steps[^1].Loss:F3}");
        Assert.False(model.training, "the model is back in eval mode");
        // The optimizer's state and the parameters' gradients are freed with the run; each step's temporaries with the step.
        Assert.True(liveAfter - liveBefore <= 0, $"{liveAfter - liveBefore} tensors outlived the training run");

        using var again = RandomModel(Lm, Tiny);
        Assert.Equal(steps.Select(s => s.Loss), new Trainer(Lm, again, Tokenizer, Args).Train(train).Steps.Select(s => s.Loss));
        using var other = RandomModel(Lm, Tiny);
        Assert.NotEqual(steps.Select(s => s.Loss), new Trainer(Lm, other, Tokenizer, Args with { Seed = 6 }).Train(train).Steps.Select(s => s.Loss));
    }

    [Fact]
    public void The_row_by_row_lm_backward_gives_the_gradients_and_loss_of_the_whole_batch_loss()
    {
        var config = Tiny with { ResidPdrop = 0, EmbdPdrop = 0, AttnPdrop = 0 };
        using var model = Lm.CreateRandom(config, seed: 1, new ModelLoadOptions { DType = ScalarType.Float64 }); // float64: only the summation order differs
        var parameters = model.named_parameters().ToList();
        foreach (var (_, p) in parameters) p.requires_grad_(true);
        model.train();
        // Ragged rows: padding, an attention mask and −100 labels, as a batch of unequal examples has.
        var examples = new[] { new long[] { 464, 3797, 7224, 262, 2613, 13 }, [32, 3290, 7832], [3666, 1545, 7228, 262] }
            .Select(ids => new TrainingExample(ids, ids)).ToList();
        using var batch = Lm.Batch(model, examples);
        Dictionary<string, Tensor> Gradients(Func<double> backward, out double loss)
        {
            foreach (var (_, p) in parameters) p.grad = null;
            loss = backward();
            return parameters.ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        }
        var whole = Gradients(() =>
        {
            using var loss = Lm.Loss(model, batch);
            using var scaled = loss * 0.5;
            scaled.backward();
            return scaled.item<double>();
        }, out double wholeLoss);
        var rows = Gradients(() => Lm.Backward(model, batch, 0.5), out double rowsLoss);
        model.eval();
        foreach (var (_, p) in parameters) { p.grad = null; p.requires_grad_(false); }
        Assert.Equal(wholeLoss, rowsLoss, 10);
        foreach (var (name, gradient) in whole)
            Assert.True(gradient.allclose(rows[name], rtol: 1e-9, atol: 1e-13), $"{name}: the gradients differ by up to {(gradient - rows[name]).abs().max().item<double>()}");
        foreach (var g in whole.Values.Concat(rows.Values)) g.Dispose();
    }

    [Fact]
    public void A_run_resumed_from_a_checkpoint_continues_with_exactly_the_uninterrupted_runs_losses()
    {
        var (train, validation) = Corpus();
        var args = Args with { MaxSteps = 12, SaveSteps = 6, LoggingSteps = 3 };
        using var model = RandomModel(Lm, Tiny);
        var whole = new Trainer(Lm, model, Tokenizer, args, _dir).Train(train, validation);
        string checkpoint = Path.Combine(_dir, "checkpoint-6");
        foreach (var file in new[] { "config.json", "model.safetensors", "generation_config.json", "vocab.json", "merges.txt", "optimizer.safetensors", "scheduler.json", "rng_state.bin", "trainer_state.json" })
            Assert.True(File.Exists(Path.Combine(checkpoint, file)), $"checkpoint-6 has {file}");

        using var resumedModel = Lm.Load(checkpoint, new ModelLoadOptions(), c => c);
        var resumed = new Trainer(Lm, resumedModel, Tokenizer, args, Path.Combine(_dir, "again")).Train(train, validation, resumeFromCheckpoint: checkpoint);
        Assert.Equal(Enumerable.Range(7, 6), resumed.Steps.Select(s => s.Step));
        Assert.Equal(whole.Steps.Skip(6).Select(s => s.Loss), resumed.Steps.Select(s => s.Loss));
        Assert.Equal(whole.Evaluation!["eval_loss"], resumed.Evaluation!["eval_loss"]);

        using var fresh = RandomModel(Lm, Tiny);
        var refused = Assert.Throws<ArgumentException>(() => new Trainer(Lm, fresh, Tokenizer, Args).Train(train.Take(50).ToList(), resumeFromCheckpoint: checkpoint));
        Assert.Contains("trained on", refused.Message);
        Assert.Contains("not a training checkpoint", Assert.Throws<ArgumentException>(() => new Trainer(Lm, fresh, Tokenizer, Args).Train(train, resumeFromCheckpoint: _dir)).Message);
    }

    [Fact]
    public void Checkpoints_beyond_the_save_total_limit_are_removed_oldest_first()
    {
        var (train, _) = Corpus();
        using var model = RandomModel(Lm, Tiny with { NLayer = 1 });
        var saved = new List<string>();
        new Trainer(Lm, model, Tokenizer, Args with { MaxSteps = 8, SaveSteps = 2, SaveTotalLimit = 2 }, _dir).Train(train, events: new TrainerEvents { OnSave = saved.Add });
        Assert.Equal(4, saved.Count);
        Assert.Equal([6, 8], TrainerCheckpoint.List(_dir).Select(c => c.Step));
        Assert.Empty(Directory.GetDirectories(_dir, "*.partial"));
    }

    [Fact]
    public void The_saved_folder_reloads_to_the_same_logits_in_hfs_save_pretrained_layout()
    {
        var golden = Path.Combine(GoldenData.Root, "models", "lm");
        var goldenConfig = Gpt2Config.FromFile(Path.Combine(golden, "config.json"));
        using var model = RandomModel(Lm, goldenConfig);
        Lm.SavePretrained(model, Tokenizer, _dir);

        using (var weights = SafetensorsFile.Open(Path.Combine(_dir, "model.safetensors")))
        using (var goldenWeights = SafetensorsFile.Open(Path.Combine(golden, "model.safetensors")))
            Assert.Equal(goldenWeights.Tensors.Keys.Order(StringComparer.Ordinal), weights.Tensors.Keys.Order(StringComparer.Ordinal));
        var written = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "config.json")))!.AsObject();
        var expected = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(golden, "config.json")))!.AsObject();
        foreach (var (field, _) in expected.Where(f => f.Key != "transformers_version"))
            Assert.True(written.ContainsKey(field), $"config.json has {field}");
        Assert.Equal("GPT2LMHeadModel", written["architectures"]![0]!.GetValue<string>());
        Assert.Equal("float32", written["torch_dtype"]!.GetValue<string>());
        Assert.Equal(50256, System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "generation_config.json")))!["eos_token_id"]!.GetValue<int>());

        var saved = Gpt2Tokenizer.FromDirectory(_dir);
        Assert.Equal(Tokenizer.Encode("Hello there, général Kenobi <|endoftext|>!"), saved.Encode("Hello there, général Kenobi <|endoftext|>!"));
        using var reloaded = Gpt2LMHeadModel.FromPretrained(_dir);
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(new long[] { 15496, 995, 11, 703, 389 }).unsqueeze(0);
        using var a = ((Gpt2LMHeadModel)model).forward(ids);
        using var b = reloaded.forward(ids);
        Assert.True(a.Logits.eq(b.Logits).all().item<bool>(), "the reloaded model gives the same logits");
    }

    [Fact]
    public void Bf16_mixed_precision_trains_the_fp32_master_weights_as_far_as_fp32_does()
    {
        var (train, validation) = Corpus();
        var args = Args with { MaxSteps = 16, GradientAccumulationSteps = 1 }; // short: libtorch's CPU bf16 products are slow
        using var model = RandomModel(Lm, Tiny);
        double before = EvalLoss(Lm, model, validation);
        long liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        new Trainer(Lm, model, Tokenizer, args with { Bf16 = true }).Train(train);
        Assert.True(DisposeScopeManager.Statistics.ThreadTotalLiveCount - liveBefore <= 0, "no tensor outlived the bf16 run");
        Assert.Equal(ScalarType.Float32, model.DType);
        double after = EvalLoss(Lm, model, validation);
        using var fp32 = RandomModel(Lm, Tiny);
        new Trainer(Lm, fp32, Tokenizer, args).Train(train);
        double reference = EvalLoss(Lm, fp32, validation);
        Assert.True(after < before - 1, $"validation loss {before:F3} → {after:F3} in bf16 (fp32: {reference:F3}): it should fall by more than 1 nat");
        Assert.True(Math.Abs(after - reference) < 0.25, $"bf16 reaches {after:F3}, fp32 {reference:F3}");
    }

    [Fact]
    public void A_sequence_classifier_learns_which_subject_a_sentence_has()
    {
        // The label is the sentence's subject (animal or person): the head must read the first words.
        var random = new Random(11);
        string[] animals = ["the cat", "a dog", "a small bird"], people = ["my friend", "the old man", "a teacher"];
        LabeledText Example()
        {
            bool animal = random.Next(2) == 0;
            var subject = animal ? animals[random.Next(animals.Length)] : people[random.Next(people.Length)];
            return new LabeledText($"{subject} {Verbs[random.Next(Verbs.Length)]} {Objects[random.Next(Objects.Length)]}.", animal ? "animal" : "person");
        }
        var data = Enumerable.Range(0, 240).Select(_ => Example()).ToList();
        var labels = LabelSet.FromData(data.Select(d => d.Label));
        Assert.Equal(["animal", "person"], labels.Names);
        var task = new SequenceClassificationTask();
        var config = Tiny with { Id2Label = labels.Id2Label, PadTokenId = Tokenizer.EndOfTextId };
        var train = SequenceClassificationTask.Examples(data[..200], Tokenizer, labels, 32);
        var validation = SequenceClassificationTask.Examples(data[200..], Tokenizer, labels, 32);
        using var model = RandomModel(task, config);
        var result = new Trainer(task, model, Tokenizer, Args with { MaxSteps = 50, GradientAccumulationSteps = 1, PerDeviceTrainBatchSize = 8 }).Train(train, validation);
        Assert.True(result.Evaluation!["eval_accuracy"] >= 0.95, $"accuracy {result.Evaluation["eval_accuracy"]:F3} after 50 steps");
        Assert.True(result.Evaluation.ContainsKey("eval_f1_animal") && result.Evaluation.ContainsKey("eval_macro_f1"));
        Assert.Contains("outside num_labels", Assert.Throws<ArgumentException>(() => labels.Id("2")).Message);
        Assert.Contains("not one of the 2 labels", Assert.Throws<ArgumentException>(() => labels.Id("plant")).Message);
    }

    [Fact]
    public void A_token_classifier_learns_the_role_of_each_word()
    {
        var random = new Random(12);
        TaggedWords Example()
        {
            var words = new List<string>();
            var tags = new List<string>();
            foreach (var (phrase, tag) in new[] { (Subjects[random.Next(Subjects.Length)], "SUBJ"), (Verbs[random.Next(Verbs.Length)], "VERB"), (Objects[random.Next(Objects.Length)], "OBJ") })
                foreach (var word in phrase.Split(' ')) { words.Add(word); tags.Add(tag); }
            return new TaggedWords(words, tags);
        }
        var data = Enumerable.Range(0, 240).Select(_ => Example()).ToList();
        var labels = new LabelSet(["SUBJ", "VERB", "OBJ"]);
        var task = new TokenClassificationTask();
        var train = TokenClassificationTask.Examples(data[..200], Tokenizer, labels, 32);
        var validation = TokenClassificationTask.Examples(data[200..], Tokenizer, labels, 32);
        Assert.All(train, e => Assert.Equal(e.InputIds.Length, e.Labels.Length));
        using var model = RandomModel(task, Tiny with { Id2Label = labels.Id2Label });
        var result = new Trainer(task, model, Tokenizer, Args with { MaxSteps = 50, GradientAccumulationSteps = 1, PerDeviceTrainBatchSize = 8 }).Train(train, validation);
        Assert.True(result.Evaluation!["eval_accuracy"] >= 0.9, $"token accuracy {result.Evaluation["eval_accuracy"]:F3} after 50 steps");
    }

    [Fact]
    public void Hundreds_of_training_steps_leave_no_tensor_alive()
    {
        var (train, _) = Corpus();
        using var model = RandomModel(Lm, Tiny with { NLayer = 1, NEmbd = 16, NHead = 2 });
        var live = new List<long>();
        new Trainer(Lm, model, Tokenizer, Args with { MaxSteps = 300, PerDeviceTrainBatchSize = 1, GradientAccumulationSteps = 1 })
            .Train(train, events: new TrainerEvents { OnStep = s => { if (s.Step % 50 == 0) live.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount); } });
        Assert.Equal(6, live.Count);
        Assert.True(live[^1] - live[0] <= 0, $"live tensors across steps 50..300: {string.Join(", ", live)}");
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

        // HF's step count: ⌈epochs × ⌊⌈examples ÷ batch⌉ ÷ accumulation⌋⌉, warm-up from the ratio unless given.
        var epochs = new TrainingArguments { NumTrainEpochs = 2.5, PerDeviceTrainBatchSize = 8, GradientAccumulationSteps = 2, WarmupRatio = 0.1 }.ForDataset(100);
        Assert.Equal(15, epochs.MaxSteps); // ⌈100/8⌉ = 13 batches, 6 steps an epoch, × 2.5
        Assert.Equal(2, epochs.WarmupSteps);
        Assert.Equal(7, (new TrainingArguments { MaxSteps = 7 }).ForDataset(3).MaxSteps);
        Assert.Equal("num_train_epochs", Assert.Throws<ArgumentException>(() => new TrainingArguments { NumTrainEpochs = 0 }.Validate()).ParamName);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
