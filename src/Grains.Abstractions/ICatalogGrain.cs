namespace Gpt2Orleans.Grains;

/// <summary>
/// Which models exist and which live silos serve them (a singleton, key <see cref="GrainKeys.CatalogKey"/>).
/// Models named at run time are persisted; the models silos were started with are read from their metadata.
/// </summary>
public interface ICatalogGrain : IGrainWithStringKey
{
    Task AddModel(ModelDefinition model);
    Task RemoveModel(string name);
    Task<IReadOnlyList<ModelInfo>> ListModels();
    /// <summary>The model, or <see cref="ModelUnavailableException"/> when it is unknown.</summary>
    Task<ModelInfo> GetModel(string name);
}
