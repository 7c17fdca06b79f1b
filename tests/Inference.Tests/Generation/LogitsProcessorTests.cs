using Gpt2Orleans.Inference.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Generation;

/// <summary>Processors on hand-made distributions, with HF's semantics worked out by hand.</summary>
public sealed class LogitsProcessorTests
{
    private static float[] Apply(ILogitsProcessor processor, float[] logits, IReadOnlyList<int>? ids = null)
    {
        using var scope = torch.NewDisposeScope();
        var scores = torch.tensor(logits).unsqueeze(0);
        return processor.Process([ids ?? []], scores).squeeze(0).data<float>().ToArray();
    }

    private static readonly float[] Logits = [MathF.Log(0.5f), MathF.Log(0.25f), MathF.Log(0.15f), MathF.Log(0.1f)];

    [Fact]
    public void Min_p_keeps_tokens_at_least_min_p_times_the_top_probability()
    {
        var result = Apply(new MinPLogitsWarper(0.4), Logits); // threshold 0.2: keeps 0.5 and 0.25
        Assert.Equal([false, false, true, true], result.Select(float.IsNegativeInfinity));
    }

    [Fact]
    public void Top_p_keeps_the_smallest_nucleus_above_the_mass()
    {
        var result = Apply(new TopPLogitsWarper(0.7), Logits); // 0.5 + 0.25 ≥ 0.7
        Assert.Equal([false, false, true, true], result.Select(float.IsNegativeInfinity));
        Assert.Equal([false, true, true, true], Apply(new TopPLogitsWarper(0.3), Logits).Select(float.IsNegativeInfinity));
    }

    [Fact]
    public void Typical_p_keeps_tokens_closest_to_the_entropy()
    {
        // Entropy of (0.5, 0.25, 0.15, 0.1) ≈ 1.208 nats; surprisals 0.69, 1.39, 1.90, 2.30: 1.39 is closest, then 0.69.
        // Cumulative mass in that order is 0.25, 0.75, …; HF keeps up to and including the first token past the mass.
        Assert.Equal([true, false, true, true], Apply(new TypicalLogitsWarper(0.2), Logits).Select(float.IsNegativeInfinity));
        Assert.Equal([false, false, true, true], Apply(new TypicalLogitsWarper(0.3), Logits).Select(float.IsNegativeInfinity));
    }

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_scores_of_seen_tokens()
    {
        var result = Apply(new RepetitionPenaltyLogitsProcessor(2.0), [2f, -2f, 3f, 1f], [0, 1, 1]);
        Assert.Equal([1f, -4f, 3f, 1f], result);
    }

    [Fact]
    public void No_repeat_ngram_bans_the_token_that_would_complete_a_seen_ngram()
    {
        var result = Apply(new NoRepeatNGramLogitsProcessor(3), [0f, 0f, 0f, 0f], [1, 2, 3, 1, 2]);
        Assert.Equal([false, false, false, true], result.Select(float.IsNegativeInfinity));
    }

    [Fact]
    public void Min_new_tokens_bans_eos_until_enough_tokens_exist()
    {
        var processor = new MinLengthLogitsProcessor(2, [3], promptLength: 2);
        Assert.True(float.IsNegativeInfinity(Apply(processor, [0f, 0f, 0f, 0f], [7, 7, 1])[3]));
        Assert.False(float.IsNegativeInfinity(Apply(processor, [0f, 0f, 0f, 0f], [7, 7, 1, 1])[3]));
    }

    [Fact]
    public void Sampling_draws_in_proportion_to_probability()
    {
        var sampler = new SequenceSampler(7);
        var counts = new int[3];
        for (int i = 0; i < 20000; i++) counts[sampler.Sample([0.7f, 0.2f, 0.1f])]++;
        Assert.InRange(counts[0] / 20000.0, 0.68, 0.72);
        Assert.InRange(counts[2] / 20000.0, 0.09, 0.11);
        Assert.Equal(0, new SequenceSampler(1).Sample([1f, 0f, 0f]));
    }

    [Fact]
    public void Epsilon_and_eta_cutoffs_drop_improbable_tokens_but_keep_the_best()
    {
        Assert.Equal([false, false, false, true], Apply(new EpsilonLogitsWarper(0.12, entropyAdaptive: false), Logits).Select(float.IsNegativeInfinity));
        Assert.Equal([false, true, true, true], Apply(new EpsilonLogitsWarper(0.9, entropyAdaptive: false), Logits).Select(float.IsNegativeInfinity));
        // eta = min(0.5, √0.5 · e^−1.208) ≈ 0.211: drops 0.15 and 0.1.
        Assert.Equal([false, false, true, true], Apply(new EpsilonLogitsWarper(0.5, entropyAdaptive: true), Logits).Select(float.IsNegativeInfinity));
    }

    [Fact]
    public void Sequence_bias_adds_to_single_tokens_always_and_to_longer_sequences_after_their_prefix()
    {
        var processor = new SequenceBiasLogitsProcessor([([2], 1.5), ([1, 3], -2.0)]);
        Assert.Equal([0f, 0f, 1.5f, 0f], Apply(processor, [0f, 0f, 0f, 0f], [0]));
        Assert.Equal([0f, 0f, 1.5f, -2f], Apply(processor, [0f, 0f, 0f, 0f], [0, 1]));
    }

    [Fact]
    public void Suppressed_and_forced_tokens()
    {
        Assert.Equal([false, true, false, true], Apply(new SuppressTokensLogitsProcessor([1, 3]), [0f, 0f, 0f, 0f]).Select(float.IsNegativeInfinity));
        var begin = new SuppressTokensLogitsProcessor([0], atLength: 2);
        Assert.True(float.IsNegativeInfinity(Apply(begin, [0f, 0f, 0f, 0f], [5, 5])[0]));
        Assert.False(float.IsNegativeInfinity(Apply(begin, [0f, 0f, 0f, 0f], [5, 5, 5])[0]));
        var forced = new ForcedTokenLogitsProcessor(2, atLength: 3);
        Assert.Equal([true, true, false, true], Apply(forced, [1f, 2f, 3f, 4f], [7, 7, 7]).Select(float.IsNegativeInfinity));
        Assert.Equal([1f, 2f, 3f, 4f], Apply(forced, [1f, 2f, 3f, 4f], [7, 7]));
        var normalized = Apply(new LogitNormalization(), [1f, 2f, 3f, 4f]);
        Assert.Equal(1.0, normalized.Sum(MathF.Exp), 1e-5);
    }
}
