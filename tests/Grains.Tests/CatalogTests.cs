using Gpt2Orleans.Grains.Tests.Support;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>The catalog: models added and removed at run time, plus those the silos serve, each with its serving silos.</summary>
[Collection(ClusterCollection.Name)]
public sealed class CatalogTests(ClusterFixture fixture)
{
    private ICatalogGrain Catalog => fixture.Client.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey);

    [Fact]
    public async Task Models_can_be_added_and_removed_at_run_time()
    {
        string name = "gamma-" + Guid.NewGuid().ToString("N")[..6];
        await Catalog.AddModel(new ModelDefinition(name, "org/gamma", ["lm", "sequence-classification"], "cuda"));
        var info = await Catalog.GetModel(name);
        Assert.Equal("org/gamma", info.Definition.Source);
        Assert.Empty(info.Silos); // listed, but no live silo serves it yet

        await Catalog.RemoveModel(name);
        await Assert.ThrowsAsync<ModelUnavailableException>(() => Catalog.GetModel(name));
        await Assert.ThrowsAsync<ModelUnavailableException>(() => Catalog.RemoveModel(name));
    }

    [Fact]
    public async Task Served_models_are_listed_with_their_source_and_silos()
    {
        var alpha = await Catalog.GetModel(ClusterFixture.Alpha);
        Assert.Equal(ClusterFixture.AlphaFolder, alpha.Definition.Source);
        Assert.Equal(2, alpha.Silos.Count);
        Assert.Equal("cpu", alpha.Definition.Device);
    }

    [Theory]
    [InlineData("../escape", "org/x", "cpu", "model")]
    [InlineData("ok-name", " ", "cpu", "source")]
    [InlineData("ok-name", "org/x", "tpu", "device")]
    public async Task A_bad_definition_is_refused_naming_the_field(string name, string source, string device, string parameter)
    {
        var error = await Assert.ThrowsAsync<InvalidRequestException>(() => Catalog.AddModel(new ModelDefinition(name, source, ["lm"], device)));
        Assert.Equal(parameter, error.Parameter);
    }
}
