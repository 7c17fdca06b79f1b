using Gpt2Orleans.Inference.Quantization;

namespace Gpt2Orleans.Grains;

/// <summary>Between the engine's <see cref="QuantizationConfig"/>, the contracts' <see cref="WeightQuantization"/> and silo metadata's "int4/32".</summary>
public static class ModelQuantization
{
    public static WeightQuantization Of(QuantizationConfig config) => new(config.Name, config.Bits, config.GroupSize);

    public static string Text(WeightQuantization quantization) => $"{quantization.Method}/{quantization.GroupSize}";

    /// <summary>"int4/32" (type and group size) as a contract, or null when it does not parse (metadata from another version).</summary>
    public static WeightQuantization? FromText(string? text)
    {
        if (text?.Split('/') is not [var name, var size] || !int.TryParse(size, out int groupSize)) return null;
        try { return QuantizationConfig.Parse(name, groupSize) is { } config ? Of(config) : null; }
        catch (ArgumentException) { return null; }
    }

    /// <summary>A definition's quantization as the engine's, or a 400-class error naming what is wrong.</summary>
    public static QuantizationConfig Validate(WeightQuantization quantization)
    {
        try
        {
            var config = QuantizationConfig.Parse(quantization.Method, quantization.GroupSize)
                ?? throw new InvalidRequestException("quantization: leave it out for dense weights", "quantization");
            if (config.Bits != quantization.Bits)
                throw new InvalidRequestException($"quantization: {quantization.Method} has {config.Bits} bits, not {quantization.Bits}", "quantization");
            return config;
        }
        catch (ArgumentException e) { throw new InvalidRequestException($"quantization: {e.Message}", "quantization"); }
    }
}
