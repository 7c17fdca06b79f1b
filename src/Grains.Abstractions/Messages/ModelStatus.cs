namespace Gpt2Orleans.Grains;

/// <summary>One model worker's load and memory: what placement and the metrics read.</summary>
[GenerateSerializer, Immutable]
public sealed record ModelStatus(
    [property: Id(0)] string Model,
    [property: Id(1)] string Silo,
    [property: Id(2)] bool Loaded,
    [property: Id(3)] int Running,
    [property: Id(4)] int Waiting,
    [property: Id(5)] int KvBlocksUsed,
    [property: Id(6)] int KvBlocksFree,
    [property: Id(7)] int KvBlocksCached,
    [property: Id(8)] long ParameterBytes,
    [property: Id(9)] int ContextLength,
    [property: Id(10)] IReadOnlyList<string> Heads);
