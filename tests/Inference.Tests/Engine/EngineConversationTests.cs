using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>Kept sequences: a conversation's KV stays in the pool between turns, can be forked, and gives way under pressure.</summary>
[Collection(GoldenCollection.Name)]
public sealed class EngineConversationTests(GoldenData golden)
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;
    private static readonly GenerationConfig Greedy = new() { MaxNewTokens = 6, EosTokenIds = [] };

    private static Task<EngineTurn> Run(GenerationEngine engine, EngineRequest request) => EngineTurn.Run(engine, request);

    private IReadOnlyList<int> Alone(IReadOnlyList<int> prompt) => DenseReference.Generate(golden.Lm(), prompt, Greedy)[0];

    [Fact]
    public async Task A_conversation_continues_from_its_kept_kv_and_forks_independently()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var turn1Prompt = Tokenizer.Encode("User: Hello there, how are you today?\nBot:").ToList();
        var turn1 = await Run(engine, new EngineRequest("t", turn1Prompt, Greedy) { Owner = "a" });
        Assert.Equal(Alone(turn1Prompt), turn1.Ids);
        await Eventually.True(() => engine.Stats.Kept == 1, "the first turn is kept"); // stats refresh after the step that sent the last token

        List<int> history = [.. turn1Prompt, .. turn1.Ids, .. Tokenizer.Encode("\nUser: Tell me more.\nBot:")];
        var turn2 = await Run(engine, new EngineRequest("t", history, Greedy) { Owner = "a" });
        Assert.Equal(Alone(history), turn2.Ids);
        // Everything the first turn computed was reused: its prompt and all but its last generated token.
        Assert.Equal(turn1Prompt.Count + turn1.Ids.Count - 1, turn2.Usage.CachedPromptTokens);

        List<int> branchA = [.. history, .. turn2.Ids, .. Tokenizer.Encode(" Yes.")];
        List<int> branchB = [.. history, .. turn2.Ids, .. Tokenizer.Encode(" No, never.")];
        var forked = await Run(engine, new EngineRequest("t", branchA, Greedy) { Owner = "b", ForkFrom = "a" });
        var continued = await Run(engine, new EngineRequest("t", branchB, Greedy) { Owner = "a" });
        Assert.Equal(Alone(branchA), forked.Ids);
        Assert.Equal(Alone(branchB), continued.Ids);
        Assert.True(forked.Usage.CachedPromptTokens > history.Count);
        Assert.True(continued.Usage.CachedPromptTokens > history.Count, "the fork left the source's KV kept for it");
        await Eventually.True(() => engine.Stats.Kept == 2, "each conversation keeps its own latest turn");
        engine.Release("a");
        engine.Release("b");
        await Eventually.True(() => engine.Stats.Kept == 0 && engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task A_turn_whose_reader_left_early_holds_no_kv_that_a_next_turn_or_a_release_does_not_free()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var prompt = Tokenizer.Encode("User: Hello there\nBot:").ToList();
        await using (var reader = engine.SubmitAsync(new EngineRequest("t", prompt, Greedy) { Owner = "s" }).GetAsyncEnumerator())
        {
            Assert.True(await reader.MoveNextAsync());
            await Eventually.True(() => engine.Stats.Kept == 1, "the turn finished and was kept while nobody read its end");
        } // the reader goes away without the last event; the turn is not committed by its caller
        // The next turn starts from the committed history, which the abandoned turn's KV does not start: it is freed.
        List<int> committed = [.. prompt, .. Tokenizer.Encode(" Hi!\nUser: Again\nBot:")];
        var next = await Run(engine, new EngineRequest("t", committed, Greedy) { Owner = "s" });
        Assert.Equal(Alone(committed), next.Ids);
        await Eventually.True(() => engine.Stats.Kept == 1, "only the new turn is kept");
        engine.Release("s");
        await Eventually.True(() => engine.Stats.Kept == 0 && engine.Stats.BlocksUsed == 0);

        // A turn cancelled mid-stream frees its KV at once, kept or not.
        using var cancel = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in engine.SubmitAsync(new EngineRequest("t", prompt, Greedy with { MaxNewTokens = 60 }) { Owner = "s" }, cancel.Token))
                cancel.Cancel();
        });
        await Eventually.True(() => engine.Stats.Kept == 0 && engine.Stats.BlocksUsed == 0 && engine.Stats.Running == 0);
    }

    [Fact]
    public async Task A_reader_that_leaves_right_after_the_last_event_keeps_its_conversation()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var prompt = Tokenizer.Encode("User: Hello there\nBot:").ToList();
        await foreach (var e in engine.SubmitAsync(new EngineRequest("t", prompt, Greedy) { Owner = "s" }))
            if (e.Finish is not null) break; // leaves without asking for the end of the stream
        await Task.Delay(200); // time for a wrongful release to happen
        Assert.Equal(1, engine.Stats.Kept);
        engine.Release("s");
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task Another_tenant_cannot_reuse_a_kept_sequence()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var prompt = Tokenizer.Encode("The secret plan of tenant A is").ToList();
        var turn = await Run(engine, new EngineRequest("A", prompt, Greedy) { Owner = "a" });
        List<int> history = [.. prompt, .. turn.Ids];
        var other = await Run(engine, new EngineRequest("B", history, Greedy) { Owner = "b", ForkFrom = "a" });
        Assert.Equal(0, other.Usage.CachedPromptTokens); // neither the kept KV nor A's prefix cache served B
        Assert.Equal(Alone(history), other.Ids);
        await Eventually.True(() => engine.Stats.Kept == 2, "A's conversation is still kept (and B's own)");
        // Naming A's conversation as one's own from another tenant neither reaches it nor replaces it.
        var thief = await Run(engine, new EngineRequest("C", history, Greedy) { Owner = "a" });
        Assert.Equal(0, thief.Usage.CachedPromptTokens);
        await Eventually.True(() => engine.Stats.Kept == 2 && engine.Stats.Running == 0, "A's and B's conversations are kept, C's turn is not");
        var again = await Run(engine, new EngineRequest("A", [.. history, .. Tokenizer.Encode(" More.")], Greedy) { Owner = "a" });
        Assert.True(again.Usage.CachedPromptTokens >= history.Count - 1, "A's kept KV is intact");
        engine.Release("a");
        engine.Release("b");
        await Eventually.True(() => engine.Stats.Kept == 0 && engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task Kept_sequences_give_way_when_running_requests_need_the_memory()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 12, BlockSize = 4 });
        for (int i = 0; i < 4; i++)
            await Run(engine, new EngineRequest("t", Tokenizer.Encode($"Conversation number {i} starts here"), Greedy) { Owner = $"c{i}" });
        var prompt = Tokenizer.Encode("A new request that needs most of the pool, twenty tokens or so long in all").ToList();
        var result = await Run(engine, new EngineRequest("t", prompt, Greedy));
        Assert.Equal(Alone(prompt), result.Ids);
        await Eventually.True(() => engine.Stats.Kept < 4, "kept sequences released");
    }
}
