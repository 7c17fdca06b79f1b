namespace Gpt2Orleans.Grains;

/// <summary>One label and its probability.</summary>
[GenerateSerializer, Immutable]
public sealed record LabelScore([property: Id(0)] string Label, [property: Id(1)] double Score);

/// <summary>A text's predicted label and every label's probability (labels from the model's id2label).</summary>
[GenerateSerializer, Immutable]
public sealed record TextClassificationResult([property: Id(0)] string Label, [property: Id(1)] IReadOnlyList<LabelScore> Scores);

/// <summary>One token's predicted label and its probability.</summary>
[GenerateSerializer, Immutable]
public sealed record TokenLabel([property: Id(0)] int TokenId, [property: Id(1)] string Token, [property: Id(2)] string Label, [property: Id(3)] double Score);

/// <summary>A question's answer in its context: the text, its character offsets (end exclusive) and its score.</summary>
[GenerateSerializer, Immutable]
public sealed record QuestionAnswer([property: Id(0)] string Answer, [property: Id(1)] int Start, [property: Id(2)] int End, [property: Id(3)] double Score);

/// <summary>One choice's multiple-choice logit and its probability among the choices.</summary>
[GenerateSerializer, Immutable]
public sealed record ChoiceScore([property: Id(0)] float Logit, [property: Id(1)] double Score);
