using System.Text.RegularExpressions;

namespace Gpt2Orleans.Grains;

/// <summary>
/// How grain keys are spelled. A session is "tenant/session", so one tenant's id can never name another's session;
/// a model worker is "model|silo|version" (one per model version per silo). Ids are restricted to a safe alphabet so they
/// can also name files and blobs.
/// </summary>
public static partial class GrainKeys
{
    public const string CatalogKey = "catalog";

    /// <summary>RequestContext entry naming the model of the session being called, so placement can choose a serving silo.</summary>
    public const string ModelContextKey = "gpt2o.model";

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\z")] // \z, not $: "$" also matches before a final newline
    private static partial Regex IdPattern();

    public static bool IsValidId(string? id) => id is not null && IdPattern().IsMatch(id);

    public static string ValidId(string? id, string what) =>
        IsValidId(id) ? id! : throw new InvalidRequestException($"{what} '{id}' is not valid: use 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit", what);

    public static string Session(string tenant, string session) => $"{ValidId(tenant, "tenant")}/{ValidId(session, "session")}";

    public static (string Tenant, string Session) ParseSession(string key)
    {
        int slash = key.IndexOf('/');
        if (slash <= 0) throw new InvalidRequestException($"session key '{key}' is not 'tenant/session'", "session");
        return (key[..slash], key[(slash + 1)..]);
    }

    /// <summary>A model worker: one per model version per silo, "model|silo|version" (a silo address never holds '|'); a model a silo was started with is version 0.</summary>
    public static string ModelWorker(string model, string silo, int version = 0) => $"{ValidId(model, "model")}|{silo}|{version}";

    public static (string Model, string Silo, int Version) ParseModelWorker(string key)
    {
        var parts = key.Split('|');
        if (parts is not [{ Length: > 0 } model, { Length: > 0 } silo, var v] || !int.TryParse(v, out int version) || version < 0)
            throw new InvalidRequestException($"model worker key '{key}' is not 'model|silo|version'", "model");
        return (model, silo, version);
    }
}
