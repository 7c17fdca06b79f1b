using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>
/// What a silo advertises in its Orleans silo metadata: the models it serves (comma-separated names), their
/// sources, heads, chat templates (JSON, when not the default), and whether it has a GPU. Placement and the catalog read it for every live silo.
/// </summary>
public static class SiloModels
{
    public const string ModelsKey = "gpt2o.models";
    public const string GpuKey = "gpt2o.gpu";
    public const string SourcePrefix = "gpt2o.source.";
    public const string HeadPrefix = "gpt2o.head.";
    public const string ChatTemplatePrefix = "gpt2o.chat.";
    public const string DTypeKey = "gpt2o.dtype";
    public const string QuantizationPrefix = "gpt2o.quantization.";

    /// <summary>The metadata of a silo started with <paramref name="models"/> (<see cref="Models.ModelHostOptions.StaticDefinition"/>).</summary>
    public static Dictionary<string, string> Metadata(IReadOnlyCollection<ModelDefinition> models, bool gpu, string dtype = "float32")
    {
        var metadata = new Dictionary<string, string>
        {
            [ModelsKey] = string.Join(',', models.Select(m => m.Name).Order()), [GpuKey] = gpu ? "true" : "false",
            [DTypeKey] = Inference.Checkpoints.DeviceSpec.DTypeName(Inference.Checkpoints.DeviceSpec.ParseDType(dtype)),
        };
        foreach (var model in models)
        {
            metadata[SourcePrefix + model.Name] = model.Source;
            metadata[HeadPrefix + model.Name] = model.Heads[0];
            if (model.Quantization is { } weights) metadata[QuantizationPrefix + model.Name] = ModelQuantization.Text(weights);
            if (model.ChatTemplate is { } template) metadata[ChatTemplatePrefix + model.Name] = System.Text.Json.JsonSerializer.Serialize(template);
        }
        return metadata;
    }

    /// <summary>
    /// A local checkpoint folder's config.json, or null (no such file, or until a download brings one). A config.json
    /// that does not parse is that model's load failure (a 503 naming it), read again when it loads: here, at the
    /// silo's start, it must not stop the silo and the models it serves.
    /// </summary>
    public static Inference.Checkpoints.Gpt2Config? LocalConfig(string source)
    {
        string config = Path.Combine(source, "config.json");
        if (!File.Exists(config)) return null;
        try { return Inference.Checkpoints.Gpt2Config.FromFile(config); }
        catch (Inference.Checkpoints.CheckpointException) { return null; }
    }

    /// <summary>The compute dtype the silo runs its models in.</summary>
    public static string DTypeOf(SiloMetadata metadata) => metadata.Metadata.GetValueOrDefault(DTypeKey) ?? "float32";

    /// <summary>The model's weight quantization on that silo, or null for dense weights.</summary>
    public static WeightQuantization? QuantizationOf(SiloMetadata metadata, string model) => ModelQuantization.FromText(metadata.Metadata.GetValueOrDefault(QuantizationPrefix + model));

    public static string Head(SiloMetadata metadata, string model) =>
        metadata.Metadata.GetValueOrDefault(HeadPrefix + model) ?? Models.HostedModel.LanguageModelHead;

    /// <summary>The chat template the silo was configured with for <paramref name="model"/> (the default when none).</summary>
    public static ChatTemplate ChatTemplateOf(SiloMetadata metadata, string model) =>
        metadata.Metadata.GetValueOrDefault(ChatTemplatePrefix + model) is { } json
            ? System.Text.Json.JsonSerializer.Deserialize<ChatTemplate>(json) ?? ChatTemplate.Default
            : ChatTemplate.Default;

    public static IReadOnlyList<string> Served(SiloMetadata metadata) =>
        metadata.Metadata.TryGetValue(ModelsKey, out var models) ? models.Split(',', StringSplitOptions.RemoveEmptyEntries) : [];

    public static bool Serves(SiloMetadata metadata, string model) => Served(metadata).Contains(model);

    public static bool HasGpu(SiloMetadata metadata) => metadata.Metadata.TryGetValue(GpuKey, out var gpu) && gpu == "true";

    public static string? Source(SiloMetadata metadata, string model) => metadata.Metadata.GetValueOrDefault(SourcePrefix + model);
}
