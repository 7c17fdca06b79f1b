using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Training;

/// <summary>Where a run's examples come from and how they are cut: HF's <c>--train_file</c>, <c>--validation_file</c> or a seeded split, <c>--block_size</c>.</summary>
public sealed record DataOptions
{
    public required string TrainFile { get; init; }
    public string? ValidationFile { get; init; }
    /// <summary>The fraction of the training file's documents held out for validation (seeded), when there is no validation file.</summary>
    public double? ValidationSplit { get; init; }
    public long Seed { get; init; } = 42;
    public required Gpt2Tokenizer Tokenizer { get; init; }
    /// <summary>Causal LM: tokens per block; classification: tokens an example is truncated to.</summary>
    public required int BlockSize { get; init; }
    public required int NPositions { get; init; }
    /// <summary>The label set to use (from <c>--labels</c> or the checkpoint); null: the training file's labels.</summary>
    public LabelSet? Labels { get; init; }

    public void Validate()
    {
        if (BlockSize < 1 || BlockSize > NPositions) throw new ArgumentException($"block_size must be between 1 and the model's n_positions ({NPositions}), got {BlockSize}", "block_size");
        if (ValidationSplit is not null && ValidationFile is not null) throw new ArgumentException("give either a validation file or a validation split, not both", "validation_split");
    }
}

/// <summary>The encoded examples of a run and the label set they were resolved against (null for causal LM).</summary>
public sealed record TrainingData(IReadOnlyList<TrainingExample> Train, IReadOnlyList<TrainingExample>? Validation, LabelSet? Labels);

/// <summary>
/// A task whose files hold records of <typeparamref name="TRecord"/>: reading, the seeded validation split (of
/// documents, before tokenizing, as HF's <c>run_clm</c> splits its dataset), the label set and the encoding are here once.
/// </summary>
public abstract class TrainingTask<TRecord> : TrainingTask
{
    protected abstract List<TRecord> Read(string path);

    /// <summary>The labels a record carries (none for causal LM), from which a label set is inferred.</summary>
    protected abstract IEnumerable<string> LabelsOf(TRecord record);

    protected abstract IReadOnlyList<TrainingExample> Encode(IReadOnlyList<TRecord> records, DataOptions options, LabelSet? labels);

    public override TrainingData LoadData(DataOptions options)
    {
        options.Validate();
        var train = Read(options.TrainFile);
        List<TRecord>? validation = options.ValidationFile is { } file ? Read(file) : null;
        if (options.ValidationSplit is { } split) (train, validation) = HoldoutSplit.Split(train, split, options.Seed);
        var labels = options.Labels;
        if (labels is null && train.SelectMany(LabelsOf).Any()) labels = LabelSet.FromData(train.SelectMany(LabelsOf));
        return new TrainingData(Encode(train, options, labels), validation is null ? null : Encode(validation, options, labels), labels);
    }
}
