using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>
/// Spilling a kept conversation: its KV exported to a file and imported into a fresh engine continues exactly as if
/// it had never left, and a stale, corrupted or hostile file is refused with a reason.
/// </summary>
[Collection(GoldenCollection.Name)]
public sealed class EngineKvSpillTests(GoldenData golden) : IDisposable
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;
    private static readonly GenerationConfig Greedy = new() { MaxNewTokens = 6, EosTokenIds = [] };
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "gpt2o-spill-" + Guid.NewGuid().ToString("N"));

    private readonly List<KvSnapshot> _snapshots = [];

    public void Dispose()
    {
        foreach (var snapshot in _snapshots) snapshot.Dispose();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }

    private static Task<EngineTurn> Run(GenerationEngine engine, EngineRequest request) => EngineTurn.Run(engine, request);

    private async Task<(string Path, List<int> History, KvSnapshot Snapshot)> SpillOneTurn()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var prompt = Tokenizer.Encode("User: Hello there, how are you today?\nBot:").ToList();
        var turn = await Run(engine, new EngineRequest("t", prompt, Greedy) { Owner = "s" });
        var snapshot = await engine.ExportKeptAsync("s");
        Assert.NotNull(snapshot);
        string path = Path.Combine(_folder, "conversation.kv");
        KvSnapshotFile.Write(path, snapshot, "model-a");
        _snapshots.Add(snapshot);
        return (path, [.. prompt, .. turn.Ids], snapshot);
    }

    [Fact]
    public async Task A_spilled_conversation_restored_into_a_new_engine_continues_without_recomputing()
    {
        var (path, history, _) = await SpillOneTurn();
        using var snapshot = KvSnapshotFile.TryRead(path, "model-a", history, out var reason);
        Assert.True(snapshot is not null, reason);

        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        Assert.True(await engine.ImportKeptAsync("s", "t", snapshot));
        List<int> next = [.. history, .. Tokenizer.Encode("\nUser: Tell me more.\nBot:")];
        var turn = await Run(engine, new EngineRequest("t", next, Greedy) { Owner = "s" });
        engine.Release("s");

        Assert.Equal(DenseReference.Generate(golden.Lm(), next, Greedy)[0], turn.Ids);
        Assert.Equal(history.Count - 1, turn.Usage.CachedPromptTokens); // all but the last generated token came from disk
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task A_float32_spill_restored_into_a_bf16_kv_cache_continues_as_that_cache_computes_it()
    {
        var (path, history, _) = await SpillOneTurn();
        using var snapshot = KvSnapshotFile.TryRead(path, "model-a", history, out var reason);
        Assert.True(snapshot is not null, reason);
        var options = new EngineOptions { KvBlocks = 128, BlockSize = 4, KvDType = TorchSharp.torch.ScalarType.BFloat16 };
        List<int> next = [.. history, .. Tokenizer.Encode("\nUser: Tell me more.\nBot:")];

        using var restored = new GenerationEngine(golden.Lm(), Tokenizer, options);
        Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, restored.KvDType);
        Assert.True(await restored.ImportKeptAsync("s", "t", snapshot));
        var turn = await Run(restored, new EngineRequest("t", next, Greedy) { Owner = "s" });
        Assert.Equal(history.Count - 1, turn.Usage.CachedPromptTokens);

        using var fresh = new GenerationEngine(golden.Lm(), Tokenizer, options);
        var recomputed = await Run(fresh, new EngineRequest("t", next, Greedy));
        Assert.Equal(recomputed.Ids, turn.Ids);
    }

    [Fact]
    public void A_kv_dtype_the_pool_cannot_hold_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => new EngineOptions { KvDType = TorchSharp.torch.ScalarType.Int8 }.Validate());
        Assert.Contains("KvDType", error.Message);
    }

    [Fact]
    public async Task A_file_for_another_model_or_other_tokens_is_refused()
    {
        var (path, history, _) = await SpillOneTurn();
        Assert.Null(KvSnapshotFile.TryRead(path, "model-b", history, out var reason));
        Assert.Contains("another model", reason);
        Assert.Null(KvSnapshotFile.TryRead(path, "model-a", [.. history, 42], out reason));
        Assert.Contains("tokens changed", reason);
    }

    [Fact]
    public async Task A_corrupted_or_truncated_file_is_refused()
    {
        var (path, history, _) = await SpillOneTurn();
        var bytes = await File.ReadAllBytesAsync(path);
        var corrupted = bytes.ToArray();
        corrupted[^10] ^= 0x40;
        await File.WriteAllBytesAsync(path, corrupted);
        Assert.Null(KvSnapshotFile.TryRead(path, "model-a", history, out var reason));
        Assert.Contains("checksum", reason);

        await File.WriteAllBytesAsync(path, bytes[..^100]);
        Assert.Null(KvSnapshotFile.TryRead(path, "model-a", history, out reason));
        Assert.Contains("data bytes", reason);

        await File.WriteAllBytesAsync(path, bytes[..20]);
        Assert.Null(KvSnapshotFile.TryRead(path, "model-a", history, out reason));
    }

    [Fact]
    public async Task A_hostile_header_cannot_make_the_reader_allocate_beyond_the_file()
    {
        var (path, history, _) = await SpillOneTurn();
        var bytes = await File.ReadAllBytesAsync(path);
        int magic = "GPT2O-KV2\n".Length;
        BitConverter.GetBytes(int.MaxValue).CopyTo(bytes, magic); // header length: 2 GB
        await File.WriteAllBytesAsync(path, bytes);
        Assert.Null(KvSnapshotFile.TryRead(path, "model-a", history, out var reason));
        Assert.Contains("impossible", reason);
        Assert.Null(KvSnapshotFile.TryRead(Path.Combine(_folder, "missing.kv"), "model-a", history, out reason));
    }

    [Fact]
    public async Task A_snapshot_that_does_not_match_the_pool_is_refused()
    {
        var (_, _, snapshot) = await SpillOneTurn();
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        using var wrong = new KvSnapshot(snapshot.Tokens, snapshot.Computed,
            TorchSharp.torch.zeros(KvSnapshot.ShapeOf(snapshot.Layers, snapshot.Computed, snapshot.Heads * 2, snapshot.HeadDim)));
        await Assert.ThrowsAsync<ArgumentException>(() => engine.ImportKeptAsync("s", "t", wrong));
        await Eventually.True(() => engine.Stats.BlocksUsed == 0, "a refused import frees what it took");
    }
}
