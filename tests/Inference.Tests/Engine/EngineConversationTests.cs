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

    private IReadOnlyList<int> Alone(IReadOnlyList<int> prompt) =>
        new TextGenerator(golden.Lm(), Tokenizer).Generate([prompt], Greedy)[0].Ids;

    [Fact]
    public async Task A_conversation_continues_from_its_kept_kv_and_forks_independently()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var turn1Prompt = Tokenizer.Encode("User: Hello there, how are you today?\nBot:").ToList();
        var turn1 = await Run(engine, new EngineRequest("t", turn1Prompt, Greedy) { KeepSequence = true });
        Assert.NotNull(turn1.Kept);
        Assert.Equal(Alone(turn1Prompt), turn1.Ids);
        await Eventually.True(() => engine.Stats.Kept == 1, "the first turn is kept"); // stats refresh after the step that sent the last token

        List<int> history = [.. turn1Prompt, .. turn1.Ids, .. Tokenizer.Encode("\nUser: Tell me more.\nBot:")];
        var turn2 = await Run(engine, new EngineRequest("t", history, Greedy) { ContinueSequence = turn1.Kept, KeepSequence = true });
        Assert.Equal(Alone(history), turn2.Ids);
        // Everything the first turn computed was reused: its prompt and all but its last generated token.
        Assert.Equal(turn1Prompt.Count + turn1.Ids.Count - 1, turn2.Usage.CachedPromptTokens);

        List<int> branchA = [.. history, .. turn2.Ids, .. Tokenizer.Encode(" Yes.")];
        List<int> branchB = [.. history, .. turn2.Ids, .. Tokenizer.Encode(" No, never.")];
        var forked = await Run(engine, new EngineRequest("t", branchA, Greedy) { ForkSequence = turn2.Kept });
        var continued = await Run(engine, new EngineRequest("t", branchB, Greedy) { ContinueSequence = turn2.Kept });
        Assert.Equal(Alone(branchA), forked.Ids);
        Assert.Equal(Alone(branchB), continued.Ids);
        Assert.True(forked.Usage.CachedPromptTokens > history.Count);
        await Eventually.True(() => engine.Stats.Kept == 0, "the continued sequence is no longer kept");
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task A_kept_turn_whose_reader_left_before_its_last_event_is_not_kept()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var prompt = Tokenizer.Encode("User: Hello there\nBot:").ToList();
        await using (var reader = engine.SubmitAsync(new EngineRequest("t", prompt, Greedy) { KeepSequence = true }).GetAsyncEnumerator())
        {
            Assert.True(await reader.MoveNextAsync());
            await Eventually.True(() => engine.Stats.Kept == 1, "the turn finished and was kept while nobody read its handle");
        } // the reader goes away without the last event (and so without the handle)
        await Eventually.True(() => engine.Stats.Kept == 0, "the orphaned kept sequence is released");
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task A_reader_that_leaves_right_after_the_last_event_keeps_its_sequence()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var prompt = Tokenizer.Encode("User: Hello there\nBot:").ToList();
        long? kept = null;
        await foreach (var e in engine.SubmitAsync(new EngineRequest("t", prompt, Greedy) { KeepSequence = true }))
            if ((kept = e.KeptSequence) is not null) break; // leaves without asking for the end of the stream
        Assert.NotNull(kept);
        await Task.Delay(200); // time for a wrongful release to happen
        Assert.Equal(1, engine.Stats.Kept);
        engine.ReleaseSequence(kept!.Value);
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task Another_tenant_cannot_reuse_a_kept_sequence()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 128, BlockSize = 4 });
        var prompt = Tokenizer.Encode("The secret plan of tenant A is").ToList();
        var turn = await Run(engine, new EngineRequest("A", prompt, Greedy) { KeepSequence = true });
        List<int> history = [.. prompt, .. turn.Ids];
        var other = await Run(engine, new EngineRequest("B", history, Greedy) { ContinueSequence = turn.Kept });
        Assert.Equal(0, other.Usage.CachedPromptTokens); // neither the kept KV nor A's prefix cache served B
        Assert.Equal(Alone(history), other.Ids);
        await Eventually.True(() => engine.Stats.Kept == 1, "A's sequence is still kept");
        engine.ReleaseSequence(turn.Kept!.Value);
        await Eventually.True(() => engine.Stats.Kept == 0 && engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task Kept_sequences_give_way_when_running_requests_need_the_memory()
    {
        using var engine = new GenerationEngine(golden.Lm(), Tokenizer, new EngineOptions { KvBlocks = 12, BlockSize = 4 });
        for (int i = 0; i < 4; i++)
            await Run(engine, new EngineRequest("t", Tokenizer.Encode($"Conversation number {i} starts here"), Greedy) { KeepSequence = true });
        var prompt = Tokenizer.Encode("A new request that needs most of the pool, twenty tokens or so long in all").ToList();
        var result = await Run(engine, new EngineRequest("t", prompt, Greedy));
        Assert.Equal(Alone(prompt), result.Ids);
        await Eventually.True(() => engine.Stats.Kept < 4, "kept sequences released");
    }
}
