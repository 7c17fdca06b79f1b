using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// The processors and warpers <c>generate</c> applies, built in HF's order: repetition penalty, no-repeat n-gram,
/// bad words, min length, min new tokens; then (sampling only) temperature, top-k, top-p, min-p, typical-p.
/// </summary>
public sealed class LogitsProcessorList(IReadOnlyList<ILogitsProcessor> processors, IReadOnlyList<ILogitsProcessor> warpers)
{
    public IReadOnlyList<ILogitsProcessor> Processors { get; } = processors;
    public IReadOnlyList<ILogitsProcessor> Warpers { get; } = warpers;

    public static LogitsProcessorList Create(GenerationConfig config, IReadOnlyList<int> eosTokenIds, int promptLength)
    {
        var processors = new List<ILogitsProcessor>();
        if (config.RepetitionPenalty != 1.0) processors.Add(new RepetitionPenaltyLogitsProcessor(config.RepetitionPenalty));
        if (config.NoRepeatNgramSize > 0) processors.Add(new NoRepeatNGramLogitsProcessor(config.NoRepeatNgramSize));
        if (config.BadWordsIds is { Count: > 0 }) processors.Add(new NoBadWordsLogitsProcessor(config.BadWordsIds, eosTokenIds.ToArray()));
        if (config.MinLength > 0 && eosTokenIds.Count > 0) processors.Add(new MinLengthLogitsProcessor(config.MinLength, eosTokenIds.ToArray()));
        if (config.MinNewTokens > 0 && eosTokenIds.Count > 0)
            processors.Add(new MinLengthLogitsProcessor(config.MinNewTokens.Value, eosTokenIds.ToArray(), promptLength));

        var warpers = new List<ILogitsProcessor>();
        if (config.DoSample)
        {
            int keep = config.IsBeamSearch ? 2 : 1; // HF keeps 2 so beam sampling always has a non-eos candidate
            if (config.Temperature != 1.0) warpers.Add(new TemperatureLogitsWarper(config.Temperature));
            if (config.TopK != 0) warpers.Add(new TopKLogitsWarper(config.TopK, keep));
            if (config.TopP < 1.0) warpers.Add(new TopPLogitsWarper(config.TopP, keep));
            if (config.MinP is { } minP) warpers.Add(new MinPLogitsWarper(minP, keep));
            if (config.TypicalP < 1.0) warpers.Add(new TypicalLogitsWarper(config.TypicalP, keep));
        }
        return new LogitsProcessorList(processors, warpers);
    }

    public Tensor Process(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        foreach (var processor in Processors) scores = processor.Process(inputIds, scores);
        return scores;
    }

    public Tensor Warp(IReadOnlyList<IReadOnlyList<int>> inputIds, Tensor scores)
    {
        foreach (var warper in Warpers) scores = warper.Process(inputIds, scores);
        return scores;
    }
}
