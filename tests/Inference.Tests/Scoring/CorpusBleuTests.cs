using Gpt2Orleans.Inference.Scoring;

namespace Gpt2Orleans.Inference.Tests.Scoring;

/// <summary>Corpus BLEU against the reference values published in NLTK's <c>bleu_score</c> documentation (Papineni et al.'s example sentences).</summary>
public sealed class CorpusBleuTests
{
    private static IReadOnlyList<string> Words(string text) => text.Split(' ');

    private static readonly IReadOnlyList<string> Hyp1 = Words("It is a guide to action which ensures that the military always obeys the commands of the party");
    private static readonly IReadOnlyList<string> Ref1a = Words("It is a guide to action that ensures that the military will forever heed Party commands");
    private static readonly IReadOnlyList<string> Ref1b = Words("It is the guiding principle which guarantees the military forces always being under the command of the Party");
    private static readonly IReadOnlyList<string> Ref1c = Words("It is the practical guide for the army always to heed the directions of the party");
    private static readonly IReadOnlyList<string> Hyp2 = Words("he read the book because he was interested in world history");
    private static readonly IReadOnlyList<string> Ref2a = Words("he was interested in world history because he read the book");

    private static readonly IReadOnlyList<IReadOnlyList<IReadOnlyList<string>>> References = [[Ref1a, Ref1b, Ref1c], [Ref2a]];

    [Fact]
    public void Corpus_bleu_equals_nltks_published_values()
    {
        Assert.Equal(0.5920778868801042, CorpusBleu.Compute(References, [Hyp1, Hyp2]).Score, 12);
        Assert.Equal(0.9655172413793104, CorpusBleu.Compute(References, [Hyp1, Hyp2], maxOrder: 1).Score, 12);
        Assert.Equal(0.8242803277698696, CorpusBleu.Compute(References, [Hyp1, Hyp2], maxOrder: 2).Score, 12);
        // sentence_bleu is the corpus score of one sentence; NLTK's documented mean of the two.
        double mean = (CorpusBleu.Compute([References[0]], [Hyp1]).Score + CorpusBleu.Compute([References[1]], [Hyp2]).Score) / 2;
        Assert.Equal(0.6223247442490669, mean, 12);
        Assert.Equal(0.5045666840058485, CorpusBleu.Compute([References[0]], [Hyp1]).Score, 12);
    }

    [Fact]
    public void The_brevity_penalty_uses_the_closest_reference_length_and_a_missing_order_gives_zero()
    {
        // A 12-word hypothesis of a 12- and a 15-word reference: the closest is 12, no penalty (NLTK's brevity-penalty example).
        var a = Enumerable.Repeat("a", 12).ToList();
        var score = CorpusBleu.Compute([[a, Enumerable.Repeat("a", 15).ToList()]], [a]);
        Assert.Equal(1, score.BrevityPenalty);
        Assert.Equal(1, score.Score, 12);
        // Half the reference's length: exp(1 − 2).
        var half = CorpusBleu.Compute([[Enumerable.Repeat("a", 24).ToList()]], [a]);
        Assert.Equal(Math.Exp(-1), half.BrevityPenalty, 12);
        Assert.Equal(0, CorpusBleu.Compute([[Words("the cat sat on the mat")]], [Words("a b c d")]).Score);
    }

    [Fact]
    public void Tokenization_splits_punctuation_as_mteval_13a_does()
    {
        Assert.Equal(["Hello", ",", "world", "!", "It", "costs", "$", "3.50", "(", "or", "so", ")", "."], CorpusBleu.Tokenize("Hello, world! It costs $3.50 (or so)."));
        Assert.Equal(["1,000", "people", "don't", "agree"], CorpusBleu.Tokenize("1,000 people\ndon't agree"));
    }
}
