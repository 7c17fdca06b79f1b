namespace Gpt2Orleans.Grains;

/// <summary>
/// A model the cluster knows: its name, where its checkpoint comes from (a local folder, <c>blob:container/path</c>,
/// or a hub repo id), which heads it has, the device it needs ("cpu" or "cuda"), how chats are rendered for it
/// (null: <see cref="ChatTemplate.Default"/>), its compute dtype, and its weights' quantization (null: dense).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ModelDefinition(
    [property: Id(0)] string Name,
    [property: Id(1)] string Source,
    [property: Id(2)] IReadOnlyList<string> Heads,
    [property: Id(3)] string Device,
    [property: Id(4)] ChatTemplate? ChatTemplate = null,
    [property: Id(5)] string DType = "float32",
    [property: Id(6)] WeightQuantization? Quantization = null)
{
    public ChatTemplate Chat => ChatTemplate ?? Grains.ChatTemplate.Default;
}

/// <summary>A model and the live silos that serve it.</summary>
[GenerateSerializer, Immutable]
public sealed record ModelInfo(
    [property: Id(0)] ModelDefinition Definition,
    [property: Id(1)] IReadOnlyList<string> Silos);
