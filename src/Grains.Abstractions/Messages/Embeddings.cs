namespace Gpt2Orleans.Grains;

/// <summary>One input to embed: a text, or token ids already encoded (OpenAI accepts both).</summary>
[GenerateSerializer, Immutable]
public sealed record EmbeddingInput([property: Id(0)] string? Text, [property: Id(1)] IReadOnlyList<int>? TokenIds = null);

/// <summary>An input's pooled last hidden state and how many tokens it had (the usage).</summary>
[GenerateSerializer, Immutable]
public sealed record TextEmbedding([property: Id(0)] float[] Vector, [property: Id(1)] int Tokens);
