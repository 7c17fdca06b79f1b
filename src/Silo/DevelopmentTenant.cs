using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Silo;

/// <summary>
/// The single-machine default needs a key that works at once: tenant "dev" with the key from GPT2O_API_KEY, or a
/// new one printed at start-up (only its hash is stored). Runs once the silo is up.
/// </summary>
public sealed class DevelopmentTenant(IGrainFactory grains, IConfiguration configuration, ILogger<DevelopmentTenant> logger) : IHostedService
{
    public const string Tenant = "dev";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        string? key = configuration["GPT2O_API_KEY"];
        bool generated = string.IsNullOrWhiteSpace(key);
        if (generated) key = ApiKeys.NewKey();
        else if (key!.Length < 8) throw new ArgumentException("GPT2O_API_KEY must be at least 8 characters");
        var tenant = grains.GetGrain<ITenantGrain>(Tenant);
        await tenant.Create();
        await tenant.RegisterKeyHash(ApiKeys.Hash(key!));
        if (generated) Console.WriteLine($"Development API key (tenant '{Tenant}'): {key}");
        else logger.LogInformation("Development tenant '{Tenant}' uses the key from GPT2O_API_KEY", Tenant);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
