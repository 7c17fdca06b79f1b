using Gpt2Orleans.Grains.Storage;
using Orleans.Runtime;
using Orleans.Storage;

namespace Gpt2Orleans.Grains.Tests.Storage;

/// <summary>
/// What every grain store must do, run against each provider: round trips, ETag concurrency, deletes, and hostile
/// grain ids that must stay inside the store.
/// </summary>
public abstract class GrainStorageContract
{
    protected abstract IGrainStorage Storage { get; }

    /// <summary>Every stored item's path (file path relative to the root, or blob name).</summary>
    protected abstract Task<IReadOnlyList<string>> StoredNames();

    public static IGrainStorageSerializer Serializer() => new JsonGrainStorageSerializer(new Orleans.Serialization.OrleansJsonSerializer(
        Microsoft.Extensions.Options.Options.Create(new Orleans.Serialization.OrleansJsonSerializerOptions())));

    protected sealed class State
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
        await Storage.WriteStateAsync("sessions", Id("t/s"), written);
        var read = Empty();
        await Storage.ReadStateAsync("sessions", Id("t/s"), read);
        Assert.True(read.RecordExists);
        Assert.Equal("hello", read.State!.Text);
        Assert.Equal([1, 2, 3], read.State!.Numbers);
        Assert.Equal(written.ETag, read.ETag);
    }

    [Fact]
    public async Task A_missing_state_reads_as_new()
    {
        var read = Empty();
        await Storage.ReadStateAsync("sessions", Id("nobody"), read);
        Assert.False(read.RecordExists);
        Assert.Null(read.ETag);
    }

    [Fact]
    public async Task A_write_with_a_stale_etag_fails_and_leaves_the_newer_state()
    {
        var first = new GrainState<State> { State = new State { Text = "one" } };
        await Storage.WriteStateAsync("sessions", Id("t/race"), first);
        var stale = new GrainState<State> { State = new State { Text = "stale" }, ETag = first.ETag };
        first.State.Text = "two";
        await Storage.WriteStateAsync("sessions", Id("t/race"), first);
        await Assert.ThrowsAsync<InconsistentStateException>(() => Storage.WriteStateAsync("sessions", Id("t/race"), stale));
        var read = Empty();
        await Storage.ReadStateAsync("sessions", Id("t/race"), read);
        Assert.Equal("two", read.State!.Text);
    }

    [Fact]
    public async Task Clearing_deletes_the_state()
    {
        var state = new GrainState<State> { State = new State { Text = "bye" } };
        await Storage.WriteStateAsync("sessions", Id("t/gone"), state);
        await Storage.ClearStateAsync("sessions", Id("t/gone"), state);
        var read = Empty();
        await Storage.ReadStateAsync("sessions", Id("t/gone"), read);
        Assert.False(read.RecordExists);
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("/absolute/path")]
    [InlineData("a\\..\\..\\b")]
    [InlineData("..")]
    public async Task Hostile_ids_stay_inside_the_store_folder(string key)
    {
        await Storage.WriteStateAsync("../sessions", Id(key), new GrainState<State> { State = new State { Text = "x" } });
        var names = await StoredNames();
        var name = Assert.Single(names);
        Assert.DoesNotContain("..", name);
        Assert.False(Path.IsPathRooted(name), name);
        Assert.Matches("^[A-Za-z0-9_-]+/[A-Za-z0-9_-][A-Za-z0-9._-]*$", name); // one safe folder, one safe name
        var read = Empty();
        await Storage.ReadStateAsync("../sessions", Id(key), read);
        Assert.Equal("x", read.State!.Text);
    }

    [Fact]
    public async Task Ids_that_differ_only_in_unsafe_characters_get_different_files()
    {
        await Storage.WriteStateAsync("sessions", Id("t/a:b"), new GrainState<State> { State = new State { Text = "colon" } });
        await Storage.WriteStateAsync("sessions", Id("t/a?b"), new GrainState<State> { State = new State { Text = "question" } });
        var read = Empty();
        await Storage.ReadStateAsync("sessions", Id("t/a:b"), read);
        Assert.Equal("colon", read.State!.Text);
    }
}
