using Gpt2Orleans.Grains.Storage;
using Orleans.Runtime;
using Orleans.Storage;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>The file grain store: round trips, ETag concurrency, deletes, and ids that must stay inside its folder.</summary>
public sealed class FileGrainStorageTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gpt2o-files-" + Guid.NewGuid().ToString("N"));
    private readonly FileGrainStorage _storage;

    public FileGrainStorageTests() => _storage = new FileGrainStorage(_root, new JsonGrainStorageSerializer(new Orleans.Serialization.OrleansJsonSerializer(
        Microsoft.Extensions.Options.Options.Create(new Orleans.Serialization.OrleansJsonSerializerOptions()))));

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private sealed class State
    {
        public string Text { get; set; } = "";
        public List<int> Numbers { get; set; } = [];
    }

    private static GrainState<State> Empty() => new() { State = new State() };

    private static GrainId Id(string key) => GrainId.Create("session", key);

    [Fact]
    public async Task A_written_state_reads_back_with_its_etag()
    {
        var written = new GrainState<State> { State = new State { Text = "hello", Numbers = [1, 2, 3] } };
        await _storage.WriteStateAsync("sessions", Id("t/s"), written);
        var read = Empty();
        await _storage.ReadStateAsync("sessions", Id("t/s"), read);
        Assert.True(read.RecordExists);
        Assert.Equal("hello", read.State!.Text);
        Assert.Equal([1, 2, 3], read.State!.Numbers);
        Assert.Equal(written.ETag, read.ETag);
    }

    [Fact]
    public async Task A_missing_state_reads_as_new()
    {
        var read = Empty();
        await _storage.ReadStateAsync("sessions", Id("nobody"), read);
        Assert.False(read.RecordExists);
        Assert.Null(read.ETag);
    }

    [Fact]
    public async Task A_write_with_a_stale_etag_fails_and_leaves_the_newer_state()
    {
        var first = new GrainState<State> { State = new State { Text = "one" } };
        await _storage.WriteStateAsync("sessions", Id("t/race"), first);
        var stale = new GrainState<State> { State = new State { Text = "stale" }, ETag = first.ETag };
        first.State.Text = "two";
        await _storage.WriteStateAsync("sessions", Id("t/race"), first);
        await Assert.ThrowsAsync<InconsistentStateException>(() => _storage.WriteStateAsync("sessions", Id("t/race"), stale));
        var read = Empty();
        await _storage.ReadStateAsync("sessions", Id("t/race"), read);
        Assert.Equal("two", read.State!.Text);
    }

    [Fact]
    public async Task Clearing_deletes_the_state()
    {
        var state = new GrainState<State> { State = new State { Text = "bye" } };
        await _storage.WriteStateAsync("sessions", Id("t/gone"), state);
        await _storage.ClearStateAsync("sessions", Id("t/gone"), state);
        var read = Empty();
        await _storage.ReadStateAsync("sessions", Id("t/gone"), read);
        Assert.False(read.RecordExists);
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("/absolute/path")]
    [InlineData("a\\..\\..\\b")]
    [InlineData("..")]
    public async Task Hostile_ids_stay_inside_the_store_folder(string key)
    {
        await _storage.WriteStateAsync("../sessions", Id(key), new GrainState<State> { State = new State { Text = "x" } });
        var files = Directory.GetFiles(_root, "*", SearchOption.AllDirectories);
        Assert.Single(files);
        Assert.StartsWith(Path.GetFullPath(_root) + Path.DirectorySeparatorChar, Path.GetFullPath(files[0]));
        var read = Empty();
        await _storage.ReadStateAsync("../sessions", Id(key), read);
        Assert.Equal("x", read.State!.Text);
    }

    [Fact]
    public async Task Ids_that_differ_only_in_unsafe_characters_get_different_files()
    {
        await _storage.WriteStateAsync("sessions", Id("t/a:b"), new GrainState<State> { State = new State { Text = "colon" } });
        await _storage.WriteStateAsync("sessions", Id("t/a?b"), new GrainState<State> { State = new State { Text = "question" } });
        var read = Empty();
        await _storage.ReadStateAsync("sessions", Id("t/a:b"), read);
        Assert.Equal("colon", read.State!.Text);
    }
}
