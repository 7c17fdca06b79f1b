using System.Security.Cryptography;
using System.Text;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// OpenAI's <c>system_fingerprint</c>: a string that changes when the backend serving a model does, so a client can
/// tell when the same seed might give other tokens. Ours hashes the model's name, source and device.
/// </summary>
public static class SystemFingerprint
{
    public static string Of(ModelDefinition model) =>
        "fp_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{model.Name}\n{model.Source}\n{model.Device}")))[..12];
}
