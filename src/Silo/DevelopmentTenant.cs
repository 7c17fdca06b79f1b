using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Silo;

/// <summary>
/// The single-machine default needs a key that works at once: tenant "dev" with the key from GPT2O_API_KEY, or one
/// generated on first start and kept in the data directory (<see cref="KeyFile"/>, readable by this user only), so a
/// restart prints the same key instead of adding another (only its hash is stored in the tenant). Only with
/// localhost clustering, or where GPT2O_API_KEY is set: a production cluster creates no tenant by itself (tenants
/// and keys come from the admin API). Runs once the silo is up.
/// </summary>
public sealed class DevelopmentTenant(IGrainFactory grains, SiloSettings settings, IConfiguration configuration, ILogger<DevelopmentTenant> logger) : IHostedService
{
    public const string Tenant = "dev";
    public const string KeyFile = "development-api-key";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        string? key = configuration["GPT2O_API_KEY"];
        bool configured = !string.IsNullOrWhiteSpace(key);
        if (configured && key!.Length < 8) throw new ArgumentException("GPT2O_API_KEY must be at least 8 characters");
        if (!configured && settings.Clustering != "localhost")
        {
            logger.LogInformation("No development tenant: clustering {Clustering} without GPT2O_API_KEY; create tenants with the admin API", settings.Clustering);
            return;
        }
        key = configured ? key : await StoredKey(Path.GetFullPath(Path.Combine(settings.DataDirectory, KeyFile)), cancellationToken);
        var tenant = grains.GetGrain<ITenantGrain>(Tenant);
        await tenant.Create();
        await tenant.RegisterKeyHash(ApiKeys.Hash(key!));
        if (configured) logger.LogInformation("Development tenant '{Tenant}' uses the key from GPT2O_API_KEY", Tenant);
        else Console.WriteLine($"Development API key (tenant '{Tenant}'): {key}");
    }

    /// <summary>The key kept in <paramref name="path"/>, written there (owner-only) on first use; a file that holds no valid key is replaced.</summary>
    private static async Task<string> StoredKey(string path, CancellationToken cancellationToken)
    {
        if (File.Exists(path) && (await File.ReadAllTextAsync(path, cancellationToken)).Trim() is { Length: >= 8 } stored && !stored.Any(char.IsWhiteSpace))
            return stored;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string key = ApiKeys.NewKey();
        string partial = path + ".partial";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using (var file = new FileStream(partial, options))
        await using (var writer = new StreamWriter(file)) await writer.WriteLineAsync(key);
        File.Move(partial, path, overwrite: true); // whole or absent: a crash mid-write leaves the old state
        return key;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
