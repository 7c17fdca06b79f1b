namespace Gpt2Orleans.Grains;

/// <summary>How a served model's weights are quantized: "int8", "int4" or "nf4", its bits, and the inputs sharing one scale.</summary>
[GenerateSerializer, Immutable]
public sealed record WeightQuantization(
    [property: Id(0)] string Method,
    [property: Id(1)] int Bits,
    [property: Id(2)] int GroupSize);
