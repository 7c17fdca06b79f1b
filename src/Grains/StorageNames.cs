namespace Gpt2Orleans.Grains;

/// <summary>The grain storage providers the grains persist to (the silo binds them to files or Azure Blob storage).</summary>
public static class StorageNames
{
    public const string Sessions = "sessions";
    public const string Tenants = "tenants";
    public const string Catalog = "catalog";
    /// <summary>The name of a session grain's state in <see cref="Sessions"/> (the tenant reads it to check its session list).</summary>
    public const string SessionState = "session";
}
