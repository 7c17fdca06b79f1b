namespace Gpt2Orleans.Inference.Classification;

/// <summary>One text's class logits, softmax scores and the winning label (from the config's id2label).</summary>
public sealed record SequenceClassification(IReadOnlyList<float> Logits, IReadOnlyList<float> Scores, string Label);

/// <summary>One token's text, logits and label.</summary>
public sealed record TokenClassification(int TokenId, string Token, IReadOnlyList<float> Logits, string Label);
