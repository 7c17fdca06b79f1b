using System.Security.Cryptography;
using System.Text;
using Gpt2Orleans.Inference.Model;

namespace Gpt2Orleans.Grains.Models;

/// <summary>A short hash naming exactly which weights a model has (see <see cref="HostedModel.Fingerprint"/>).</summary>
public static class ModelFingerprint
{
    public static string Of(string name, string source, Gpt2PreTrainedModel model)
    {
        var text = new StringBuilder().Append(name).Append('\n').Append(source).Append('\n').Append(model.Config.ToJson()).Append('\n')
            .Append(model.DType).Append('\n').Append(model.Quantization?.ToString() ?? "dense");
        if (Directory.Exists(source))
            foreach (var file in Directory.GetFiles(source, "*.safetensors").Order())
                text.Append('\n').Append(Path.GetFileName(file)).Append(' ').Append(new FileInfo(file).Length).Append(' ').Append(File.GetLastWriteTimeUtc(file).Ticks);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..32];
    }
}
