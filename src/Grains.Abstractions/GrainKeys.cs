using System.Text.RegularExpressions;

namespace Gpt2Orleans.Grains;

/// <summary>
/// How grain keys are spelled. A session is "tenant/session", so one tenant's id can never name another's session;
/// a model worker is "model|silo" (one per model per serving silo). Ids are restricted to a safe alphabet so they
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

    public static string ModelWorker(string model, string silo) => $"{ValidId(model, "model")}|{silo}";

    public static (string Model, string Silo) ParseModelWorker(string key)
    {
        int bar = key.IndexOf('|');
        if (bar <= 0) throw new InvalidRequestException($"model worker key '{key}' is not 'model|silo'", "model");
        return (key[..bar], key[(bar + 1)..]);
    }
}
