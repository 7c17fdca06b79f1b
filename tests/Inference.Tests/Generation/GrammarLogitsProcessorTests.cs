using Gpt2Orleans.Inference.Constraints;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tokenization;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Generation;

/// <summary>The grammar's mask on a step's scores: what it keeps, bans and forces, the same on both of its paths.</summary>
public sealed class GrammarLogitsProcessorTests
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;
    private const int Eos = 50256;

    [Fact]
    public void Allowed_tokens_keep_their_scores_eos_only_when_complete_and_forced_when_nothing_else_fits_on_cpu_float32_and_the_tensor_path()
    {
        var automaton = GrammarAutomaton.For(new OutputConstraint(OutputConstraintKind.Regex, "(ab|a[0-9]+)").Compile(), Tokenizer);
        int[] prompt = [464, 3290];
        // Rows: nothing yet, "a" (more must follow), "ab" (complete, nothing may follow: eos forced), "a1" (complete or more digits).
        var rows = new[] { "", "a", "ab", "a1" }.Select(text => (IReadOnlyList<int>)[.. prompt, .. Tokenizer.Encode(text)]).ToList();
        int vocab = 50260; // padded past the tokenizer's vocabulary: those ids are always banned
        using var scope = NewDisposeScope();
        var original = randn(rows.Count, vocab, generator: manual_seed(3));
        original[0, Eos] = tensor(float.NegativeInfinity); // an earlier processor banned eos in row 0 (min_new_tokens): it stays banned

        var fast = new GrammarLogitsProcessor(automaton, [Eos], prompt.Length).Process(rows, original.clone());
        var slow = new GrammarLogitsProcessor(automaton, [Eos], prompt.Length).Process(rows, original.to(ScalarType.Float64)).to(ScalarType.Float32);
        Assert.True(fast.isinf().eq(slow.isinf()).all().item<bool>(), "the two paths ban the same tokens");
        Assert.True(fast.nan_to_num(0, 0, 0).allclose(slow.nan_to_num(0, 0, 0)), "and keep the same scores");

        var kept = fast.data<float>().ToArray();
        var before = original.data<float>().ToArray();
        for (int r = 0; r < rows.Count; r++)
        {
            var state = automaton.Advance(automaton.Initial, System.Text.Encoding.UTF8.GetBytes(Tokenizer.Decode(rows[r].Skip(prompt.Length).ToList())));
            var mask = state.CanContinue ? automaton.AllowedTokens(state) : new ulong[(Tokenizer.VocabSize + 63) / 64];
            bool any = false;
            for (int t = 0; t < vocab; t++)
            {
                bool allowed = t < Tokenizer.VocabSize && (mask[t >> 6] >> (t & 63) & 1) != 0;
                any |= allowed;
                if (t == Eos) continue;
                Assert.Equal(allowed ? before[r * vocab + t] : float.NegativeInfinity, kept[r * vocab + t]);
            }
            float eos = kept[r * vocab + Eos];
            if (!any) Assert.Equal(0f, eos); // forced
            else if (state.Accepting) Assert.Equal(before[r * vocab + Eos], eos);
            else Assert.Equal(float.NegativeInfinity, eos);
        }
        Assert.Equal(float.NegativeInfinity, kept[0 * vocab + Eos]);
        Assert.Equal(0f, kept[2 * vocab + Eos]);
        Assert.Equal(before[3 * vocab + Eos], kept[3 * vocab + Eos]);
    }
}
