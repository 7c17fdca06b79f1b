using System.Security.Cryptography;
using System.Text;
using Gpt2Orleans.Gateway.Errors;

namespace Gpt2Orleans.Gateway.Admin;

/// <summary>
/// The admin endpoints take one key from configuration (GPT2O_ADMIN_KEY, or Gateway:AdminKey), compared in constant
/// time. Without a configured key the admin API is off (403). A missing key is a 401; a wrong one, including a
/// tenant's key, a 403.
/// </summary>
public sealed class AdminAuthentication(IConfiguration configuration)
{
    private readonly byte[]? _keyHash = (configuration["GPT2O_ADMIN_KEY"] ?? configuration["Gateway:AdminKey"]) is { Length: > 0 } key
        ? SHA256.HashData(Encoding.UTF8.GetBytes(key))
        : null;

    public void Authorize(HttpContext context)
    {
        string? key = Auth.TenantAuthentication.BearerToken(context) ?? throw ApiException.Unauthorized("missing admin key: send Authorization: Bearer <admin key>");
        if (_keyHash is null) throw Forbidden("the admin API is off: start the gateway with GPT2O_ADMIN_KEY set");
        if (!CryptographicOperations.FixedTimeEquals(_keyHash, SHA256.HashData(Encoding.UTF8.GetBytes(key)))) throw Forbidden("this key may not use the admin API");
    }

    private static ApiException Forbidden(string message) => new(403, message, "permission_error", null, "forbidden");
}
