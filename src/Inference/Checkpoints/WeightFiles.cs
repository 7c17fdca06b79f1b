using System.Text.Json;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>
/// The safetensors file(s) of a checkpoint folder: <c>model.safetensors</c>, or the shards listed by
/// <c>model.safetensors.index.json</c>. Maps each tensor name to the open file that holds it.
/// </summary>
public sealed class WeightFiles : IDisposable
{
    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, SafetensorsFile> _byTensor = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _byTensor.Keys;

    public static WeightFiles Open(string directory)
    {
        var weights = new WeightFiles();
        try
        {
            string single = Path.Combine(directory, "model.safetensors");
            string index = Path.Combine(directory, "model.safetensors.index.json");
            if (File.Exists(single)) weights.Add(SafetensorsFile.Open(single));
            else if (File.Exists(index)) weights.AddShards(directory, index);
            else if (File.Exists(Path.Combine(directory, "pytorch_model.bin")))
                throw new CheckpointException($"{directory}: only safetensors weights are supported (found pytorch_model.bin; convert it with safetensors' convert script)");
            else throw new CheckpointException($"{directory}: no model.safetensors or model.safetensors.index.json");
            return weights;
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    private void AddShards(string directory, string indexPath)
    {
        var shards = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(indexPath));
            foreach (var entry in document.RootElement.GetProperty("weight_map").EnumerateObject())
                shards.Add(entry.Value.GetString() ?? throw new CheckpointException($"{indexPath}: weight_map.{entry.Name} must be a file name"));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new CheckpointException($"{indexPath}: not a valid safetensors index: {e.Message}", e);
        }
        foreach (var shard in shards)
        {
            if (shard != Path.GetFileName(shard) || shard.StartsWith('.'))
                throw new CheckpointException($"{indexPath}: shard name '{shard}' must be a plain file name in the same folder");
            Add(SafetensorsFile.Open(Path.Combine(directory, shard)));
        }
    }

    private void Add(SafetensorsFile file)
    {
        _files.Add(file);
        foreach (var name in file.Tensors.Keys)
            if (!_byTensor.TryAdd(name, file))
                throw new CheckpointException($"{file.Path}: tensor '{name}' also appears in {_byTensor[name].Path}");
    }

    public SafetensorsFile.TensorInfo Info(string name) => _byTensor[name].Tensors[name];

    public SafetensorsFile FileOf(string name) => _byTensor[name];

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
    }
}
