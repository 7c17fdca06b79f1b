using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// How many bytes a model's weights take once loaded, estimated before loading from its checkpoint's files (HF
/// checkpoints are float32 on disk: bfloat16 halves them, int8 and int4 shrink the projections further), and the
/// silo's default budget for weights and KV.
/// </summary>
public static class ModelMemory
{
    /// <summary>GPT-2 small in float32, for a source whose files are not here yet (a blob or hub model before its download).</summary>
    public const long UnknownWeightBytes = 500L << 20;

    public static long EstimateWeightBytes(string source, string dtype, WeightQuantization? quantization)
    {
        long onDisk = Directory.Exists(source)
            ? Directory.EnumerateFiles(source).Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".bin", StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length)
            : UnknownWeightBytes;
        double factor = DeviceSpec.ParseDType(dtype) == TorchSharp.torch.ScalarType.Float32 ? 1.0 : 0.5;
        if (quantization is { Bits: var bits }) factor = Math.Min(factor, bits / 32.0 + 0.25); // the projections shrink; embeddings stay dense
        return (long)(onDisk * factor);
    }

    /// <summary>Half the memory this process may use: the rest is for the runtime, sessions and the OS.</summary>
    public static long DefaultBudgetBytes() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
}
