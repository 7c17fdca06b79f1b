using Gpt2Orleans.Inference.Scoring;

namespace Gpt2Orleans.Inference.Tests.Scoring;

/// <summary>Accuracy and F1 against scikit-learn's documented example, and the majority-class baseline.</summary>
public sealed class ClassificationMetricsTests
{
    [Fact]
    public void F1_equals_scikit_learns_documented_values()
    {
        // sklearn.metrics.f1_score's docstring: y_true = [0, 1, 2, 0, 1, 2], y_pred = [0, 2, 1, 0, 0, 1]
        // → average=None [0.8, 0, 0], average="macro" 0.2666…
        var metrics = ClassificationMetrics.Compute([0, 2, 1, 0, 0, 1], [0, 1, 2, 0, 1, 2], ["a", "b", "c"]);
        Assert.Equal([0.8, 0, 0], metrics.PerLabel.Select(l => Math.Round(l.F1, 12)));
        Assert.Equal(0.26666666666666666, metrics.MacroF1, 12);
        Assert.Equal(2.0 / 6, metrics.Accuracy, 12);
        Assert.Equal([2, 2, 2], metrics.PerLabel.Select(l => l.Support));
        // A label neither true nor predicted is left out of the macro mean, as scikit-learn does without labels=.
        Assert.Equal(0.26666666666666666, ClassificationMetrics.Compute([0, 2, 1, 0, 0, 1], [0, 1, 2, 0, 1, 2], ["a", "b", "c", "d"]).MacroF1, 12);
    }

    [Fact]
    public void The_majority_baseline_answers_the_training_sets_most_frequent_label()
    {
        Assert.Equal(0.75, ClassificationMetrics.MajorityBaseline([1, 1, 0, 1, 2], [1, 1, 0, 1]));
        Assert.Throws<ArgumentException>(() => ClassificationMetrics.MajorityBaseline([], [1]));
    }
}
