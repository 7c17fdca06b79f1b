namespace Gpt2Orleans.Inference.Classification;

/// <summary>Logits as probabilities, in double precision, on the host (a head's few logits: no tensor needed).</summary>
public static class Probabilities
{
    /// <summary>The softmax, shifted by the largest logit so no exponent overflows.</summary>
    public static double[] Softmax(IReadOnlyList<float> logits)
    {
        double max = logits.Max();
        var exp = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = exp.Sum();
        return exp.Select(e => e / sum).ToArray();
    }
}
