namespace Gpt2Orleans.Grains;

/// <summary>The grain storage providers the grains persist to (the silo binds them to files or Azure Blob storage).</summary>
public static class StorageNames
{
    public const string Sessions = "sessions";
    public const string Tenants = "tenants";
    public const string Catalog = "catalog";
}
