using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>Parses a device option (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>) and checks the backend can serve it.</summary>
public static class DeviceSpec
{
    public static Device Parse(string? text)
    {
        string spec = (text ?? "cpu").Trim().ToLowerInvariant();
        if (spec == "cpu") return torch.CPU;
        int index = 0;
        bool isCuda = spec == "cuda" || (spec.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(spec[5..], out index) && index >= 0);
        if (!isCuda) throw new ArgumentException($"device '{text}' is not one of cpu, cuda, cuda:N");
        if (!torch.cuda.is_available())
            throw new ArgumentException($"device '{text}': CUDA is not available (this build uses the CPU backend or no GPU is visible; build with -p:TorchBackend=cuda on a GPU host)");
        if (index >= torch.cuda.device_count())
            throw new ArgumentException($"device '{text}': only {torch.cuda.device_count()} CUDA device(s) are visible");
        return torch.device(DeviceType.CUDA, index);
    }

    /// <summary>Parses a compute dtype option: float32 (default), bfloat16, float16.</summary>
    public static ScalarType ParseDType(string? text) => (text ?? "float32").Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" or "f16" or "half" => ScalarType.Float16,
        _ => throw new ArgumentException($"dtype '{text}' is not one of float32, bfloat16, float16"),
    };

    /// <summary>The same for the setting named <paramref name="option"/> (<c>kv-dtype</c>, say), which the error names.</summary>
    public static ScalarType ParseDType(string? text, string option)
    {
        try { return ParseDType(text); }
        catch (ArgumentException e) { throw new ArgumentException($"{option}: {e.Message}"); }
    }

    /// <summary>HF's name for a dtype, as config.json's <c>torch_dtype</c> records it.</summary>
    public static string DTypeName(ScalarType type) => type switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => type.ToString().ToLowerInvariant(),
    };
}
