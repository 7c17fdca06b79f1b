using System.Security.Cryptography;
using System.Text;

namespace Gpt2Orleans.Grains;

/// <summary>
/// API keys: 256 random bits, shown once; only their SHA-256 is stored (a fast hash is right for random keys,
/// unlike passwords: there is nothing to guess).
/// </summary>
public static class ApiKeys
{
    public const string Prefix = "g2o-";

    public static string NewKey() => Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static string NewKeyId() => "key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
}
