using Gpt2Orleans.Grains.Placement;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Gpt2Orleans.Grains.Catalog;

/// <summary>
/// The models the cluster knows: those added at run time (persisted) and those live silos were started with (from
/// their metadata), each with the live silos that serve it.
/// </summary>
public sealed class CatalogGrain(
    [PersistentState("catalog", StorageNames.Catalog)] IPersistentState<CatalogState> state,
    IClusterMembershipService membership,
    ISiloMetadataCache metadata) : Grain, ICatalogGrain
{
    public async Task AddModel(ModelDefinition model)
    {
        GrainKeys.ValidId(model.Name, "model");
        if (string.IsNullOrWhiteSpace(model.Source)) throw new InvalidRequestException($"model '{model.Name}' needs a source", "source");
        model.ChatTemplate?.Validate(model.Name);
        if (model.Device is not ("cpu" or "cuda")) throw new InvalidRequestException($"device '{model.Device}' is not 'cpu' or 'cuda'", "device");
        if (model.DType is not ("float32" or "bfloat16" or "float16")) throw new InvalidRequestException($"dtype '{model.DType}' is not float32, bfloat16 or float16", "dtype");
        if (model.Quantization is { } quantization) ModelQuantization.Validate(quantization);
        state.State.Models[model.Name] = model;
        await state.WriteStateAsync();
    }

    public async Task RemoveModel(string name)
    {
        if (!state.State.Models.Remove(name)) throw new ModelUnavailableException(name, "the catalog does not list it");
        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<ModelInfo>> ListModels() => Task.FromResult(Build());

    public Task<ModelInfo> GetModel(string name) =>
        Task.FromResult(Build().FirstOrDefault(m => m.Definition.Name == name) ?? throw new ModelUnavailableException(name, "the catalog does not list it"));

    private IReadOnlyList<ModelInfo> Build()
    {
        var silos = ActiveSilos.Of(membership).Select(a => (Address: a, Metadata: metadata.GetSiloMetadata(a))).ToList();
        var definitions = new Dictionary<string, ModelDefinition>(state.State.Models);
        foreach (var (_, silo) in silos)
            foreach (var name in SiloModels.Served(silo))
                definitions.TryAdd(name, new ModelDefinition(name, SiloModels.Source(silo, name) ?? "", [SiloModels.Head(silo, name)], SiloModels.HasGpu(silo) ? "cuda" : "cpu",
                    SiloModels.ChatTemplateOf(silo, name), SiloModels.DTypeOf(silo), SiloModels.QuantizationOf(silo, name)));
        return definitions.Values.OrderBy(d => d.Name).Select(d => new ModelInfo(d,
            silos.Where(s => SiloModels.Serves(s.Metadata, d.Name)).Select(s => s.Address.ToParsableString()).Order().ToList())).ToList();
    }
}

[GenerateSerializer]
public sealed class CatalogState
{
    [Id(0)] public Dictionary<string, ModelDefinition> Models { get; set; } = [];
}
