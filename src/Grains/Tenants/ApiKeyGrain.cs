using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Tenants;

/// <summary>Key hash → tenant, persisted with the tenants.</summary>
public sealed class ApiKeyGrain([PersistentState("apikey", StorageNames.Tenants)] IPersistentState<ApiKeyState> state) : Grain, IApiKeyGrain
{
    public Task<ApiKeyOwner?> GetOwner() => Task.FromResult(state.State.Owner);

    public async Task Assign(ApiKeyOwner owner)
    {
        state.State.Owner = owner;
        await state.WriteStateAsync();
    }

    public async Task Revoke()
    {
        state.State.Owner = null;
        await state.ClearStateAsync();
    }
}

[GenerateSerializer]
public sealed class ApiKeyState
{
    [Id(0)] public ApiKeyOwner? Owner { get; set; }
}
