using Gpt2Orleans.Inference.Constraints;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// The processors and warpers <c>generate</c> applies, built in HF 4.44's order: sequence bias, (diversity, in
/// beam groups), repetition penalty, no-repeat n-gram, bad words, min length, min new tokens, forced BOS/EOS,
/// suppressed tokens, renormalisation; then (sampling only) temperature, top-k, top-p, min-p, typical-p,
/// epsilon and eta cut-offs, renormalisation.
/// </summary>
public sealed class LogitsProcessorList(ILogitsProcessor? sequenceBias, IReadOnlyList<ILogitsProcessor> processors, IReadOnlyList<ILogitsProcessor> warpers)
{
    public IReadOnlyList<ILogitsProcessor> Processors { get; } = processors;
    public IReadOnlyList<ILogitsProcessor> Warpers { get; } = warpers;
    /// <summary>No processor changes the scores (warpers aside): a greedy row can take the raw argmax.</summary>
    public bool ProcessesNothing => sequenceBias is null && Processors.Count == 0;

    /// <param name="promptLength">the (padded) prompt length: where min_new_tokens and begin_suppress_tokens count from</param>
    /// <param name="maxLength">prompt + max new tokens: forced_eos_token_id applies at the last position</param>
    /// <param name="grammar">the request's constraint on the tokenizer's vocabulary: applied after the other processors, before renormalisation</param>
    public static LogitsProcessorList Create(GenerationConfig config, IReadOnlyList<int> eosTokenIds, int promptLength, int maxLength,
        GrammarAutomaton? grammar = null)
    {
        var sequenceBias = config.SequenceBias is { Count: > 0 } biases ? new SequenceBiasLogitsProcessor(biases) : null;
        var processors = new List<ILogitsProcessor>();
        if (config.RepetitionPenalty != 1.0) processors.Add(new RepetitionPenaltyLogitsProcessor(config.RepetitionPenalty));
        if (config.PresencePenalty != 0 || config.FrequencyPenalty != 0)
            processors.Add(new PresenceFrequencyPenaltyLogitsProcessor(config.PresencePenalty, config.FrequencyPenalty, promptLength));
        if (config.NoRepeatNgramSize > 0) processors.Add(new NoRepeatNGramLogitsProcessor(config.NoRepeatNgramSize));
        if (config.BadWordsIds is { Count: > 0 }) processors.Add(new NoBadWordsLogitsProcessor(config.BadWordsIds, eosTokenIds.ToArray()));
        if (config.MinLength > 0 && eosTokenIds.Count > 0) processors.Add(new MinLengthLogitsProcessor(config.MinLength, eosTokenIds.ToArray()));
        if (config.MinNewTokens > 0 && eosTokenIds.Count > 0)
            processors.Add(new MinLengthLogitsProcessor(config.MinNewTokens.Value, eosTokenIds.ToArray(), promptLength));
        if (config.ForcedBosTokenId is { } bos) processors.Add(new ForcedTokenLogitsProcessor(bos, atLength: 1));
        if (config.ForcedEosTokenId is { } forcedEos) processors.Add(new ForcedTokenLogitsProcessor(forcedEos, atLength: maxLength - 1));
        if (config.SuppressTokens is { Count: > 0 } suppress) processors.Add(new SuppressTokensLogitsProcessor(suppress.ToArray()));
        if (config.BeginSuppressTokens is { Count: > 0 } begin) processors.Add(new SuppressTokensLogitsProcessor(begin.ToArray(), atLength: promptLength));
        if (grammar is not null) processors.Add(new GrammarLogitsProcessor(grammar, eosTokenIds, promptLength));
        if (config.RenormalizeLogits) processors.Add(new LogitNormalization());

        var warpers = new List<ILogitsProcessor>();
        if (config.Samples)
        {
            int keep = config.IsBeamSearch ? 2 : 1; // HF keeps 2 so beam sampling always has a non-eos candidate
            if (config.Temperature != 1.0) warpers.Add(new TemperatureLogitsWarper(config.Temperature));
            if (config.TopK != 0) warpers.Add(new TopKLogitsWarper(config.TopK, keep));
            if (config.TopP < 1.0) warpers.Add(new TopPLogitsWarper(config.TopP, keep));
            if (config.MinP is { } minP) warpers.Add(new MinPLogitsWarper(minP, keep));
            if (config.TypicalP < 1.0) warpers.Add(new TypicalLogitsWarper(config.TypicalP, keep));
            if (config.EpsilonCutoff > 0) warpers.Add(new EpsilonLogitsWarper(config.EpsilonCutoff, entropyAdaptive: false, keep));
            if (config.EtaCutoff > 0) warpers.Add(new EpsilonLogitsWarper(config.EtaCutoff, entropyAdaptive: true, keep));
            if (config.RenormalizeLogits) warpers.Add(new LogitNormalization());
        }
        return new LogitsProcessorList(sequenceBias, processors, warpers);
    }

    /// <param name="diversity">diverse beam search's penalty, which HF applies right after the sequence bias</param>
    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores, Func<Tensor, Tensor>? diversity = null)
    {
        if (sequenceBias is not null) scores = sequenceBias.Process(inputIds, scores);
        if (diversity is not null) scores = diversity(scores);
        foreach (var processor in Processors) scores = processor.Process(inputIds, scores);
        return scores;
    }

    /// <summary>
    /// The warpers, then scores a softmax can always turn into a distribution: +∞ (a tiny repetition penalty divides
    /// a logit past float's range) becomes the largest float, so the overflowed tokens share the mass, as they would in
    /// the limit; NaN becomes −∞ (never drawn). Filtered tokens keep their −∞.
    /// </summary>
    public Tensor Warp(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        foreach (var warper in Warpers) scores = warper.Process(inputIds, scores);
        return nan_to_num(scores, nan: double.NegativeInfinity, posinf: float.MaxValue, neginf: double.NegativeInfinity);
    }
}
