namespace Gpt2Orleans.Inference.Scoring;

/// <summary>One label's precision, recall and F1 (one-vs-rest) and how many examples carry it.</summary>
public sealed record LabelScore(string Label, double Precision, double Recall, double F1, int Support);

/// <summary>
/// Accuracy, per-label F1 and their unweighted mean (macro F1, as scikit-learn's <c>f1_score(average="macro")</c>
/// over the labels that occur among the true or the predicted ones), plus the majority-class baseline to beat.
/// </summary>
public sealed record ClassificationMetrics(double Accuracy, double MacroF1, IReadOnlyList<LabelScore> PerLabel, int Examples)
{
    public static ClassificationMetrics Compute(IReadOnlyList<int> predicted, IReadOnlyList<int> actual, IReadOnlyList<string> labels)
    {
        if (predicted.Count != actual.Count) throw new ArgumentException($"{predicted.Count} predictions for {actual.Count} examples");
        if (actual.Count == 0) throw new ArgumentException("no examples to score", "file");
        int n = labels.Count;
        var truePositives = new int[n];
        var predictedCount = new int[n];
        var actualCount = new int[n];
        int correct = 0;
        for (int i = 0; i < actual.Count; i++)
        {
            predictedCount[predicted[i]]++;
            actualCount[actual[i]]++;
            if (predicted[i] == actual[i]) { truePositives[actual[i]]++; correct++; }
        }
        var perLabel = Enumerable.Range(0, n).Select(l =>
        {
            double precision = predictedCount[l] == 0 ? 0 : (double)truePositives[l] / predictedCount[l];
            double recall = actualCount[l] == 0 ? 0 : (double)truePositives[l] / actualCount[l];
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            return new LabelScore(labels[l], precision, recall, f1, actualCount[l]);
        }).ToList();
        var present = perLabel.Where((s, l) => actualCount[l] + predictedCount[l] > 0).ToList();
        return new ClassificationMetrics((double)correct / actual.Count, present.Average(s => s.F1), perLabel, actual.Count);
    }

    /// <summary>The accuracy of always answering the training set's most frequent label.</summary>
    public static double MajorityBaseline(IReadOnlyList<int> trainingLabels, IReadOnlyList<int> actual)
    {
        if (trainingLabels.Count == 0 || actual.Count == 0) throw new ArgumentException("the majority baseline needs training and evaluation labels");
        int majority = trainingLabels.GroupBy(l => l).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        return (double)actual.Count(l => l == majority) / actual.Count;
    }
}
