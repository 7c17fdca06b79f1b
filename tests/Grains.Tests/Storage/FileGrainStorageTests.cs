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

    [Fact]
    public void A_start_removes_the_temporary_files_of_writes_a_crash_cut_short_and_keeps_the_states()
    {
        var folder = Path.Combine(_root, "sessions");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "a_0123.bin"), "state");
        File.WriteAllText(Path.Combine(folder, "a_0123.bin.0f0f.tmp"), "half a write");
        _ = new FileGrainStorage(_root, Serializer());
        Assert.Equal(["a_0123.bin"], Directory.GetFiles(folder).Select(Path.GetFileName));
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
