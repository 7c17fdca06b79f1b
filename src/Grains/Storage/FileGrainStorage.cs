using System.Security.Cryptography;
using Orleans.Runtime;
using Orleans.Storage;

namespace Gpt2Orleans.Grains.Storage;

/// <summary>
/// Grain state as files: one file per grain state under the root, named by <see cref="GrainStateNames"/> (no id
/// can reach outside the folder). Writes go to a temporary file that is
/// flushed to disk and then renamed over the old one (atomic replace). The ETag is the content's SHA-256: a write
/// whose ETag does not match what is on disk fails with <see cref="InconsistentStateException"/>. A write cut short by
/// a crash leaves only its temporary file (the old state stands); a start removes those.
/// </summary>
public sealed class FileGrainStorage : IGrainStorage
{
    private readonly SemaphoreSlim _lock = new(1, 1); // one writer at a time keeps compare-and-replace atomic within the silo
    private readonly string _root;
    private readonly IGrainStorageSerializer _serializer;

    public FileGrainStorage(string root, IGrainStorageSerializer serializer)
    {
        _root = root;
        _serializer = serializer;
        RemoveUnfinishedWrites(root);
    }

    /// <summary>Temporary files of writes a crash interrupted: never renamed into place, so nothing refers to them.</summary>
    private static void RemoveUnfinishedWrites(string root)
    {
        if (!Directory.Exists(root)) return;
        foreach (var file in Directory.EnumerateFiles(root, "*.tmp", SearchOption.AllDirectories))
        {
            try { File.Delete(file); }
            catch (IOException) { } // another process holds it: not ours to remove
        }
    }

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var path = PathOf(stateName, grainId);
        if (!File.Exists(path))
        {
            grainState.State = Activator.CreateInstance<T>();
            grainState.RecordExists = false;
            grainState.ETag = null;
            return;
        }
        var bytes = await File.ReadAllBytesAsync(path);
        grainState.State = _serializer.Deserialize<T>(new BinaryData(bytes)) ?? Activator.CreateInstance<T>();
        grainState.RecordExists = true;
        grainState.ETag = ETagOf(bytes);
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var path = PathOf(stateName, grainId);
        var bytes = _serializer.Serialize(grainState.State).ToArray();
        await _lock.WaitAsync();
        try
        {
            CheckETag(path, grainState.ETag);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var temporary = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.WriteThrough))
            {
                await file.WriteAsync(bytes);
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally { _lock.Release(); }
        grainState.ETag = ETagOf(bytes);
        grainState.RecordExists = true;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var path = PathOf(stateName, grainId);
        await _lock.WaitAsync();
        try
        {
            CheckETag(path, grainState.ETag);
            File.Delete(path);
        }
        finally { _lock.Release(); }
        grainState.ETag = null;
        grainState.RecordExists = false;
    }

    private static void CheckETag(string path, string? expected)
    {
        string? actual = File.Exists(path) ? ETagOf(File.ReadAllBytes(path)) : null;
        if (actual != expected)
            throw new InconsistentStateException($"the stored state of {Path.GetFileName(path)} changed since it was read", actual ?? "(none)", expected ?? "(none)");
    }

    private static string ETagOf(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes))[..32];

    private string PathOf(string stateName, GrainId grainId)
    {
        var (folder, name) = GrainStateNames.Of(stateName, grainId);
        return Path.Combine(_root, folder, name + ".bin");
    }
}
