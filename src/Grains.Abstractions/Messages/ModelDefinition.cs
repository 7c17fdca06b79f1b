namespace Gpt2Orleans.Grains;

/// <summary>
/// A model the cluster knows: its name, where its checkpoint comes from (a local folder, <c>blob:container/path</c>,
/// or a hub repo id), which heads it has, and the device it needs ("cpu" or "cuda").
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ModelDefinition(
    [property: Id(0)] string Name,
    [property: Id(1)] string Source,
    [property: Id(2)] IReadOnlyList<string> Heads,
    [property: Id(3)] string Device);

/// <summary>A model and the live silos that serve it.</summary>
[GenerateSerializer, Immutable]
public sealed record ModelInfo(
    [property: Id(0)] ModelDefinition Definition,
    [property: Id(1)] IReadOnlyList<string> Silos);
