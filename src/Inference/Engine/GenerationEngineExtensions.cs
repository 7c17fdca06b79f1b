using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Scoring;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>Whole results from the engine's streams, for callers that want them at once (the CLI, benchmarks, tests).</summary>
public static class GenerationEngineExtensions
{
    /// <summary>
    /// HF's <c>generate</c> over the engine: every prompt at once (the engine batches them), each prompt's returned
    /// sequences collected, in prompt order then sequence order. <paramref name="onEvent"/> sees every event as it streams (prompt index, event).
    /// </summary>
    public static async Task<IReadOnlyList<GeneratedSequence>> GenerateAsync(this GenerationEngine engine, IReadOnlyList<IReadOnlyList<int>> prompts,
        GenerationConfig config, string tenant = "local", Action<int, TokenEvent>? onEvent = null, CancellationToken cancellationToken = default)
    {
        if (prompts.Count == 0) throw new ArgumentException("prompts: at least one prompt is needed", nameof(prompts));
        // As HF's generate: an empty prompt starts from bos_token_id.
        int? bos = config.BosTokenId ?? engine.ModelConfig.BosTokenId;
        var ids = prompts.Select((p, i) => p.Count > 0 ? p : bos is { } b ? [b]
            : throw new ArgumentException($"prompt {i} is empty and the model has no bos_token_id to start from", nameof(prompts))).ToList();
        var streams = ids.Select(p => engine.SubmitAsync(new EngineRequest(tenant, p, config), cancellationToken)).ToList(); // validated before any runs
        var results = await Task.WhenAll(streams.Select((stream, p) => Collect(stream, p, config, onEvent)));
        return results.SelectMany(r => r).ToList();
    }

    private static async Task<IReadOnlyList<GeneratedSequence>> Collect(IAsyncEnumerable<TokenEvent> stream, int prompt, GenerationConfig config, Action<int, TokenEvent>? onEvent)
    {
        var sequences = new SortedDictionary<int, (List<int> Ids, System.Text.StringBuilder Text, List<TokenLogprob> Logprobs, TokenEvent? Last)>();
        await foreach (var e in stream)
        {
            onEvent?.Invoke(prompt, e);
            if (!sequences.TryGetValue(e.SequenceIndex, out var s)) sequences[e.SequenceIndex] = s = ([], new(), [], null);
            s.Ids.Add(e.TokenId);
            s.Text.Append(e.TextDelta);
            if (e.Logprob is { } l) s.Logprobs.Add(l);
            if (e.Finish is not null) sequences[e.SequenceIndex] = s with { Last = e };
        }
        return sequences.Values.Select(s => new GeneratedSequence(prompt, s.Ids, s.Text.ToString(), config.Logprobs is null ? null : s.Logprobs,
            s.Last?.Finish ?? FinishReason.Length, s.Last?.Score, s.Last?.StopString)).ToList();
    }

    /// <summary>A text's score (each token's log-probability given its prefix, loss, perplexity) through the engine's prefill-only scoring.</summary>
    public static async Task<TextScore> ScoreTextAsync(this GenerationEngine engine, IReadOnlyList<int> ids, string tenant = "local", CancellationToken cancellationToken = default)
    {
        if (ids.Count < 2) throw new ArgumentException($"text: scoring needs at least 2 tokens, got {ids.Count}", "text");
        if (ids.Count > engine.ModelConfig.NPositions)
            throw new ArgumentException($"text: {ids.Count} tokens exceed the model's context of {engine.ModelConfig.NPositions} positions", "text");
        var logprobs = await engine.ScoreAsync(tenant, ids, 0, cancellationToken);
        var picked = logprobs.Skip(1).Select(l => l!.Logprob).ToArray();
        double loss = -picked.Average();
        return new TextScore(ids, [null, .. picked.Select(p => (double?)p)], loss, Math.Exp(loss));
    }
}
