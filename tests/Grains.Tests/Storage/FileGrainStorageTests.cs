using Gpt2Orleans.Grains.Storage;
using Orleans.Storage;

namespace Gpt2Orleans.Grains.Tests.Storage;

public sealed class FileGrainStorageTests : GrainStorageContract, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gpt2o-files-" + Guid.NewGuid().ToString("N"));

    public FileGrainStorageTests() => Storage = new FileGrainStorage(_root, Serializer());

    protected override IGrainStorage Storage { get; }

    protected override Task<IReadOnlyList<string>> StoredNames() => Task.FromResult<IReadOnlyList<string>>(
        Directory.Exists(_root) ? Directory.GetFiles(_root, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(_root, f)).ToList() : []);

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
