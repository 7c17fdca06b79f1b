using Gpt2Orleans.Inference.Model;

namespace Gpt2Orleans.Tests.Shared;

/// <summary>
/// Tiny language models of distinct random weights (the golden tiny model's shape), and a hostile checkpoint, in a
/// temporary folder: models to register at run time, more than a small budget holds.
/// </summary>
public sealed class TinyModelFolders(string alphaFolder) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gpt2o-models-" + Guid.NewGuid().ToString("N"));

    /// <summary>A tiny model's folder with weights drawn from <paramref name="seed"/> (made once).</summary>
    public string Model(int seed)
    {
        string folder = Path.Combine(_root, $"seed-{seed}");
        lock (_root)
        {
            if (Directory.Exists(folder)) return folder;
            using var alpha = Gpt2LMHeadModel.FromPretrained(alphaFolder);
            using var model = Gpt2LMHeadModel.CreateRandom(alpha.Config, seed: seed);
            model.SavePretrained(folder);
        }
        return folder;
    }

    /// <summary>The tiny model's config.json with a safetensors header that claims 16 GB of JSON: the loader must refuse it, not allocate it.</summary>
    public string Hostile()
    {
        string folder = Path.Combine(_root, "hostile");
        lock (_root)
        {
            Directory.CreateDirectory(folder);
            File.Copy(Path.Combine(alphaFolder, "config.json"), Path.Combine(folder, "config.json"), overwrite: true);
            using var file = File.Create(Path.Combine(folder, "model.safetensors"));
            file.Write(BitConverter.GetBytes(16L << 30));
            file.Write("{\"wte\":"u8);
        }
        return folder;
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
