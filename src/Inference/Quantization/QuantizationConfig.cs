using System.Text.Json.Nodes;
using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// How a model's weights are quantized: the attention and MLP projections and the LM head (the tied <c>wte</c>)
/// in <see cref="Type"/>, symmetric per group of <see cref="GroupSize"/> inputs (<see cref="QuantizedWeight"/>).
/// A quantized checkpoint records it in config.json as HF does, under <c>quantization_config</c>:
/// <c>{"quant_method": "gpt2orleans", "bits": 4, "group_size": 32}</c>, and for nf4 also <c>"quant_type": "nf4"</c>
/// (the name of bitsandbytes' <c>bnb_4bit_quant_type</c>; absent, the integer levels).
/// </summary>
public sealed record QuantizationConfig(QuantizationType Type, int GroupSize = QuantizationConfig.DefaultGroupSize)
{
    public const string Method = "gpt2orleans";
    /// <summary>32: int4's perplexity cost on the fortunes model was +0.90% with groups of 32 and +1.05% with 64 (README).</summary>
    public const int DefaultGroupSize = 32;

    public int Bits => Type == QuantizationType.Int8 ? 8 : 4;

    /// <summary>The name users pass (<c>--quantize int8|int4|nf4</c>) and the API reports.</summary>
    public string Name => Type switch { QuantizationType.Int8 => "int8", QuantizationType.Int4 => "int4", _ => "nf4" };

    /// <summary>config.json's name for nf4's code book.</summary>
    private const string Nf4QuantType = "nf4";

    /// <summary>Parses <c>int8</c> / <c>int4</c> / <c>nf4</c> (or <c>none</c>, null: no quantization) and a group size, naming what is wrong.</summary>
    public static QuantizationConfig? Parse(string? name, int groupSize = DefaultGroupSize)
    {
        var type = name?.Trim().ToLowerInvariant() switch
        {
            null or "" or "none" => (QuantizationType?)null,
            "int8" or "8bit" => QuantizationType.Int8,
            "int4" or "4bit" => QuantizationType.Int4,
            "nf4" => QuantizationType.Nf4,
            _ => throw new ArgumentException($"unknown quantization '{name}': expected int8, int4, nf4 or none"),
        };
        if (type is null) return null;
        QuantizedWeight.CheckGroupSize(groupSize);
        return new QuantizationConfig(type.Value, groupSize);
    }

    internal JsonObject ToJson()
    {
        var json = new JsonObject { ["quant_method"] = Method, ["bits"] = Bits, ["group_size"] = GroupSize };
        if (Type == QuantizationType.Nf4) json["quant_type"] = Nf4QuantType;
        return json;
    }

    /// <summary>config.json's <c>quantization_config</c>, or null when absent; another method (bitsandbytes, GPTQ, …) is refused by name.</summary>
    internal static QuantizationConfig? FromJson(JsonFieldReader? section, string source)
    {
        if (section is null) return null;
        var method = section.String("quant_method");
        if (method != Method)
            throw new CheckpointException($"{source}: quantization_config.quant_method '{method}' is not supported (only '{Method}' checkpoints, written by `gpt2o quantize`, load quantized)");
        int? bits = section.Int("bits");
        var type = (bits, section.String("quant_type")) switch
        {
            (8, null) => QuantizationType.Int8,
            (4, null) => QuantizationType.Int4,
            (4, Nf4QuantType) => QuantizationType.Nf4,
            (8 or 4, var other) => throw new CheckpointException($"{source}: quantization_config.quant_type '{other}' with {bits} bits is not supported (only '{Nf4QuantType}', with 4 bits; left out, the levels are integers)"),
            _ => throw new CheckpointException($"{source}: quantization_config.bits must be 8 or 4, got {bits?.ToString() ?? "nothing"}"),
        };
        int groupSize = section.Int("group_size") ?? throw new CheckpointException($"{source}: quantization_config.group_size is missing");
        try { QuantizedWeight.CheckGroupSize(groupSize); }
        catch (ArgumentException e) { throw new CheckpointException($"{source}: quantization_config: {e.Message}"); }
        return new QuantizationConfig(type, groupSize);
    }
}
