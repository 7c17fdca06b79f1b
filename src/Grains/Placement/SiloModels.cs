using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Gpt2Orleans.Grains.Placement;

/// <summary>
/// What a silo advertises in its Orleans silo metadata: the models it serves (comma-separated names), their
/// sources, and whether it has a GPU. Placement and the catalog read it for every live silo.
/// </summary>
public static class SiloModels
{
    public const string ModelsKey = "gpt2o.models";
    public const string GpuKey = "gpt2o.gpu";
    public const string SourcePrefix = "gpt2o.source.";

    public static Dictionary<string, string> Metadata(IReadOnlyDictionary<string, string> models, bool gpu)
    {
        var metadata = new Dictionary<string, string> { [ModelsKey] = string.Join(',', models.Keys.Order()), [GpuKey] = gpu ? "true" : "false" };
        foreach (var (name, source) in models) metadata[SourcePrefix + name] = source;
        return metadata;
    }

    public static IReadOnlyList<string> Served(SiloMetadata metadata) =>
        metadata.Metadata.TryGetValue(ModelsKey, out var models) ? models.Split(',', StringSplitOptions.RemoveEmptyEntries) : [];

    public static bool Serves(SiloMetadata metadata, string model) => Served(metadata).Contains(model);

    public static bool HasGpu(SiloMetadata metadata) => metadata.Metadata.TryGetValue(GpuKey, out var gpu) && gpu == "true";

    public static string? Source(SiloMetadata metadata, string model) => metadata.Metadata.GetValueOrDefault(SourcePrefix + model);
}
