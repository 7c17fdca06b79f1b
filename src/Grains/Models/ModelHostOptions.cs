namespace Gpt2Orleans.Grains.Models;

/// <summary>What one silo serves and how: models (name → source), device, dtype and each engine's KV pool.</summary>
public sealed class ModelHostOptions
{
    /// <summary>Name → source: a local Hugging Face folder, <c>blob:container/path</c>, a hub repo id, or "default" (random GPT-2 small).</summary>
    public Dictionary<string, string> Models { get; set; } = [];
    /// <summary>Name → how chats are rendered for it (a model not named here uses <see cref="ChatTemplate.Default"/>).</summary>
    public Dictionary<string, ChatTemplate> ChatTemplates { get; set; } = [];
    /// <summary>The Azure Storage account that <c>blob:</c> model sources are read from.</summary>
    public string? BlobConnectionString { get; set; }
    public string Device { get; set; } = "cpu";
    public string DType { get; set; } = "float32";
    /// <summary>int8, int4 or null: the weights every model's projections and LM head are quantized to at load.</summary>
    public string? Quantize { get; set; }
    /// <summary>Inputs per quantization scale (a multiple of 32).</summary>
    public int GroupSize { get; set; } = Inference.Quantization.QuantizationConfig.DefaultGroupSize;

    public Inference.Quantization.QuantizationConfig? Quantization => Inference.Quantization.QuantizationConfig.Parse(Quantize, GroupSize);
    /// <summary>The KV cache's dtype (float32, bfloat16, float16); null: each model's compute dtype.</summary>
    public string? KvDType { get; set; }

    public TorchSharp.torch.ScalarType? KvScalarType => KvDType is null ? null : Inference.Checkpoints.DeviceSpec.ParseDType(KvDType, "kv-dtype");
    public long KvCacheBytes { get; set; } = 512L << 20;
    public int MaxRunningSequences { get; set; } = 64;
    /// <summary>Requests that may wait for admission before new ones are answered "retry later" (HTTP 429).</summary>
    public int MaxWaitingRequests { get; set; } = 1024;
    /// <summary>Whether a request's output is the same bit for bit however it is batched (seeded samples reproduce under load), at some compute cost on small batches.</summary>
    public bool BatchInvariant { get; set; }
    /// <summary>Where deactivating sessions spill their KV on this silo's local disk (null: they do not spill).</summary>
    public string? SpillDirectory { get; set; }
    /// <summary>On shutdown, how long running generations may take to finish.</summary>
    public int DrainSeconds { get; set; } = 30;
    /// <summary>Bytes this silo may hold in model weights and KV pools (null: <see cref="ModelMemory.DefaultBudgetBytes"/>).</summary>
    public long? MemoryBudgetBytes { get; set; }

    /// <summary>
    /// A model given at start (<see cref="Models"/>) as a definition: version 0, static, run as this silo runs its
    /// models; its head and a pre-quantized checkpoint's quantization read from a local config.json. The silo's
    /// metadata advertises it, and its host loads it.
    /// </summary>
    public ModelDefinition StaticDefinition(string name)
    {
        string source = Models[name];
        var config = Placement.SiloModels.LocalConfig(source);
        var quantization = config?.Quantization ?? Quantization;
        return new ModelDefinition(name, source, [ModelHeads.Of(config?.Architectures ?? [])], Device.StartsWith("cuda", StringComparison.Ordinal) ? "cuda" : "cpu",
            ChatTemplates.GetValueOrDefault(name), Inference.Checkpoints.DeviceSpec.DTypeName(Inference.Checkpoints.DeviceSpec.ParseDType(DType)),
            quantization is null ? null : ModelQuantization.Of(quantization)) { Static = true };
    }

    public void Validate()
    {
        foreach (var name in Models.Keys)
            if (!GrainKeys.IsValidId(name))
                throw new ArgumentException($"model name '{name}' is not valid: use 1–128 letters, digits, '.', '_' or '-'", "model");
        foreach (var (name, source) in Models)
            if (string.IsNullOrWhiteSpace(source)) throw new ArgumentException($"model '{name}' has no source", "model");
        ValidateChatTemplates(Models, ChatTemplates);
        Inference.Checkpoints.DeviceSpec.ParseDType(DType);
        _ = KvScalarType; // likewise a bad --kv-dtype
        _ = Quantization; // a bad --quantize or --group-size is refused here, naming it
        if (KvCacheBytes <= 0) throw new ArgumentException("kv-cache-bytes: must be positive", "kv-cache-bytes");
        if (MaxRunningSequences <= 0) throw new ArgumentException("max-running-sequences: must be positive", "max-running-sequences");
        if (MaxWaitingRequests <= 0) throw new ArgumentException("max-waiting-requests: must be positive", "max-waiting-requests");
        if (MemoryBudgetBytes is <= 0) throw new ArgumentException("model-memory-mb: must be positive", "model-memory-mb");
    }

    public static void ValidateChatTemplates(IReadOnlyDictionary<string, string> models, IReadOnlyDictionary<string, ChatTemplate> templates)
    {
        foreach (var (name, template) in templates)
        {
            if (!models.ContainsKey(name)) throw new ArgumentException($"a chat template is set for model '{name}', which this silo does not serve");
            try { template.Validate(name); }
            catch (InvalidRequestException e) { throw new ArgumentException(e.Message); }
        }
    }
}
