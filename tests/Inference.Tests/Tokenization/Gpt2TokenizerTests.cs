using System.Text;
using System.Text.Json;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Tokenization;

public sealed class Gpt2TokenizerTests
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.FromFiles(
        Path.Combine(GoldenData.Root, "tokenizer", "vocab.json"), Path.Combine(GoldenData.Root, "tokenizer", "merges.txt"));

    public static TheoryData<int> CaseIndices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Cases.Length; i++) data.Add(i);
        return data;
    }

    private static readonly JsonElement[] Cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(GoldenData.Root, "tokenization.json")))
        .RootElement.EnumerateArray().ToArray();

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Encodes_decodes_and_streams_exactly_as_hf(int index)
    {
        var c = Cases[index];
        string text = c.GetProperty("text").GetString()!;
        var expectedIds = GoldenJson.Ints(c.GetProperty("ids"));

        var ids = Tokenizer.Encode(text);
        Assert.Equal(expectedIds, ids);
        Assert.Equal(GoldenJson.Names(c.GetProperty("tokens")), ids.Select(Tokenizer.IdToToken));
        Assert.Equal(c.GetProperty("decoded").GetString(), Tokenizer.Decode(ids));
        Assert.Equal(c.GetProperty("decoded_clean_up_tokenization_spaces").GetString(), Tokenizer.Decode(ids, cleanUpTokenizationSpaces: true));

        var stream = Tokenizer.CreateStreamingDetokenizer();
        var pieces = ids.Select(stream.Push).Append(stream.Flush()).ToList();
        Assert.Equal(text, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD') || (p.Length > 0 && char.IsHighSurrogate(p[^1])));
    }

    [Fact]
    public void The_bundled_vocabulary_equals_the_golden_files()
    {
        const string text = "Hello  world, 😀 <|endoftext|> café";
        Assert.Equal(Tokenizer.Encode(text), Gpt2Tokenizer.Default.Encode(text));
        Assert.Equal(new[] { 15496, 220, 995 }, Gpt2Tokenizer.Default.Encode("Hello  world"));
    }

    [Fact]
    public void Streaming_holds_back_a_character_split_across_tokens()
    {
        var ids = Tokenizer.Encode(" 😀");
        Assert.Equal(new[] { 30325, 222 }, ids);
        var stream = Tokenizer.CreateStreamingDetokenizer();
        Assert.Equal(" ", stream.Push(ids[0]));   // the space is complete; the emoji's first 3 bytes wait
        Assert.Equal("😀", stream.Push(ids[1]));
    }

    [Fact]
    public void A_dangling_partial_character_becomes_a_replacement_character_at_the_end()
    {
        var stream = Tokenizer.CreateStreamingDetokenizer();
        Assert.Equal(" ", stream.Push(30325));
        Assert.Equal("\uFFFD", stream.Flush());
        Assert.Equal(" \uFFFD", Tokenizer.Decode([30325]));
    }

    [Fact]
    public void Skip_special_tokens_drops_end_of_text()
    {
        var ids = Tokenizer.Encode("a<|endoftext|>b");
        Assert.Equal("a<|endoftext|>b", Tokenizer.Decode(ids));
        Assert.Equal("ab", Tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    [Theory]
    [InlineData(PaddingSide.Left)]
    [InlineData(PaddingSide.Right)]
    public void Batch_encoding_pads_on_the_requested_side_with_a_matching_mask(PaddingSide side)
    {
        var batch = Tokenizer.EncodeBatch(["Hello world", "A"], padTokenId: 50256, side);
        Assert.Equal(2, batch.Length);
        long[] expectedIds = side == PaddingSide.Left ? [50256, 32] : [32, 50256];
        long[] expectedMask = side == PaddingSide.Left ? [0, 1] : [1, 0];
        Assert.Equal(expectedIds, batch.InputIds[1]);
        Assert.Equal(expectedMask, batch.AttentionMask[1]);
        Assert.Equal(new long[] { 15496, 995 }, batch.InputIds[0]);
    }

    [Fact]
    public void Out_of_range_ids_are_a_clear_error()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Decode([50257]));
        Assert.Contains("50257", error.Message);
    }

    [Fact]
    public void Every_token_round_trips_through_its_bytes()
    {
        // The byte-level alphabet must cover every vocabulary entry.
        for (int id = 0; id < Tokenizer.VocabSize; id++) Assert.NotEmpty(Tokenizer.TokenBytes(id));
        Assert.Equal(Encoding.UTF8.GetBytes(" the"), Tokenizer.TokenBytes(262));
    }
}
