using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// HF's <c>generate</c> for a batch of prompts: greedy search, sampling, beam search and diverse (group) beam
/// search, with HF's logits processors and stopping rules, incremental decoding through a
/// <see cref="KeyValueCache"/>, and per-token log-probabilities. One call runs to completion on the calling thread.
/// </summary>
public sealed class TextGenerator(Gpt2LMHeadModel model, Gpt2Tokenizer tokenizer)
{
    public Gpt2LMHeadModel Model { get; } = model;
    public Gpt2Tokenizer Tokenizer { get; } = tokenizer;

    /// <summary>Encodes the prompts, pads them on the left and generates.</summary>
    public IReadOnlyList<GeneratedSequence> Generate(IReadOnlyList<string> prompts, GenerationConfig config,
        Action<GeneratedToken>? onToken = null, CancellationToken cancellationToken = default) =>
        Generate(prompts.Select(p => Tokenizer.Encode(p)).ToList(), config, onToken, cancellationToken);

    /// <summary>Generates from token-id prompts (an empty prompt starts from bos_token_id).</summary>
    public IReadOnlyList<GeneratedSequence> Generate(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationConfig config,
        Action<GeneratedToken>? onToken = null, CancellationToken cancellationToken = default)
    {
        if (prompts.Count == 0) throw new ArgumentException("prompts: at least one prompt is needed", nameof(prompts));
        int? bos = config.BosTokenId ?? Model.Config.BosTokenId;
        var ids = prompts.Select((p, i) => p.Count > 0 ? p
            : bos is { } b ? [b]
            : throw new ArgumentException($"prompt {i} is empty and the model has no bos_token_id to start from", nameof(prompts))).ToList();
        int pad = ResolvePad(config);
        return Generate(BatchEncoding.Pad(ids, pad, PaddingSide.Left), config, onToken, cancellationToken);
    }

    /// <summary>Generates from an already padded batch (HF's input_ids + attention_mask), left padding expected.</summary>
    public IReadOnlyList<GeneratedSequence> Generate(BatchEncoding batch, GenerationConfig config,
        Action<GeneratedToken>? onToken = null, CancellationToken cancellationToken = default)
    {
        config.Validate(Model.Config.VocabSize);
        if (config.StopStrings is { Count: > 0 } && config.IsBeamSearch)
            throw new ArgumentException("stop_strings: not supported with beam search (use eos_token_id or bad_words_ids)", "stop_strings");
        foreach (var row in batch.InputIds)
            foreach (var id in row)
                if (id < 0 || id >= Model.Config.VocabSize)
                    throw new ArgumentOutOfRangeException("input_ids", $"token id {id} is outside the vocabulary (0..{Model.Config.VocabSize - 1})");

        int maxNew = config.MaxNewTokens ?? Math.Max(0, config.MaxLength - batch.Length);
        batch = FitContext(batch, maxNew, config.TruncatePrompt);
        var run = new GenerationRun(this, batch, config, maxNew, ResolveEos(config), ResolvePad(config), onToken, cancellationToken);
        return config.IsBeamSearch ? run.BeamSearch() : run.SampleOrGreedy();
    }

    private IReadOnlyList<int> ResolveEos(GenerationConfig config) => config.ResolveEos(Model.Config);

    private int ResolvePad(GenerationConfig config) => config.ResolvePad(Model.Config, Tokenizer.EndOfTextId);

    private BatchEncoding FitContext(BatchEncoding batch, int maxNew, bool truncate)
    {
        int limit = Model.Config.NPositions;
        if (batch.Length + maxNew <= limit) return batch;
        if (!truncate || maxNew >= limit)
            throw new ArgumentException(
                $"max_new_tokens: the prompt ({batch.Length} tokens) plus {maxNew} new tokens exceeds the model's context of {limit} positions" +
                (truncate ? "" : "; lower max_new_tokens or ask for prompt truncation"), "max_new_tokens");
        int keep = limit - maxNew;
        return new BatchEncoding(batch.InputIds.Select(r => r[^keep..]).ToArray(), batch.AttentionMask.Select(r => r[^keep..]).ToArray());
    }

    /// <summary>The state of one <c>Generate</c> call.</summary>
    private sealed class GenerationRun(TextGenerator owner, BatchEncoding batch, GenerationConfig config, int maxNew,
        IReadOnlyList<int> eos, int pad, Action<GeneratedToken>? onToken, CancellationToken cancellationToken)
    {
        private readonly Gpt2LMHeadModel _model = owner.Model;
        private readonly Gpt2Tokenizer _tokenizer = owner.Tokenizer;
        private readonly LogitsProcessorList _processors = LogitsProcessorList.Create(config, eos, batch.Length, batch.Length + maxNew);

        /// <summary>HF's <c>_sample</c> (greedy when not sampling): finished rows receive pad until all are done.</summary>
        public IReadOnlyList<GeneratedSequence> SampleOrGreedy()
        {
            int copies = config.NumReturnSequences, rows = batch.BatchSize * copies;
            using var decode = new DecodeBatch(_model, batch, copies, maxNew);
            var finish = new FinishReason?[rows];
            var newTokens = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToArray();
            var logprobs = config.Logprobs is null ? null : Enumerable.Range(0, rows).Select(_ => new List<TokenLogprob>()).ToArray();
            var samplers = config.DoSample ? Enumerable.Range(0, rows).Select(r => new SequenceSampler(SequenceSampler.SeedFor(config.Seed, r))).ToArray() : null;
            var detokenizers = Enumerable.Range(0, rows).Select(_ => _tokenizer.CreateStreamingDetokenizer()).ToArray();
            var stops = Enumerable.Range(0, rows).Select(_ => new StopStringMatcher(config.StopStrings ?? [])).ToArray();

            for (int step = 0; step < maxNew && finish.Any(f => f is null); step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var logits = decode.NextLogits();                                  // (N, V) float32
                var scores = _processors.Process(decode.Ids, logits.clone());
                int[] chosen = samplers is null ? Argmax(scores) : Sample(_processors.Warp(decode.Ids, scores), samplers);
                var chosenLogprobs = logprobs is null ? null : LogprobCalculator.Compute(logits, chosen, config.Logprobs!.Value);
                for (int r = 0; r < rows; r++)
                {
                    if (finish[r] is not null) { chosen[r] = pad; continue; }
                    newTokens[r].Add(chosen[r]);
                    logprobs?[r].Add(chosenLogprobs![r]);
                    string delta = detokenizers[r].Push(chosen[r]);
                    onToken?.Invoke(new GeneratedToken(r / copies, r % copies, chosen[r], delta));
                    if (eos.Contains(chosen[r])) finish[r] = FinishReason.EndOfSequence;
                    else if (stops[r].Append(delta)) finish[r] = FinishReason.StopString;
                }
                decode.Append(chosen);
            }
            return Enumerable.Range(0, rows).Select(r => new GeneratedSequence(r / copies, newTokens[r], _tokenizer.Decode(newTokens[r]),
                logprobs?[r], finish[r] ?? FinishReason.Length)).ToList();
        }

        /// <summary>HF's <c>_beam_search</c>, <c>_beam_sample</c> (do_sample) and <c>_group_beam_search</c> (num_beam_groups > 1).</summary>
        public IReadOnlyList<GeneratedSequence> BeamSearch()
        {
            int beams = config.NumBeams, groupSize = beams / config.NumBeamGroups, prompts = batch.BatchSize;
            int rows = prompts * beams;
            using var decode = new DecodeBatch(_model, batch, beams, maxNew);
            var scorer = new BeamSearchScorer(prompts, config, maxNew);
            var diversity = new HammingDiversityLogitsProcessor(config.DiversityPenalty, beams, config.NumBeamGroups);
            // Only the first beam of each group is live at first, so the identical copies do not fill the beam.
            var beamScores = Enumerable.Range(0, rows).Select(r => r % groupSize == 0 ? 0.0 : -1e9).ToArray();
            var newTokens = Enumerable.Range(0, rows).Select(_ => (IReadOnlyList<int>)[]).ToArray();
            int keep = Math.Max(2, 1 + eos.Count) * groupSize;
            var samplers = config.DoSample
                ? Enumerable.Range(0, prompts).Select(p => new SequenceSampler(SequenceSampler.SeedFor(config.Seed, p))).ToArray()
                : null;

            for (int step = 0; step < maxNew; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var logits = decode.NextLogits();
                var currentTokens = new int[rows];
                var sourceRows = new int[rows];
                var nextScores = new double[rows];
                var nextTokens = new IReadOnlyList<int>[rows];
                for (int group = 0; group < config.NumBeamGroups; group++)
                {
                    var groupRows = Enumerable.Range(0, prompts)
                        .SelectMany(p => Enumerable.Range(p * beams + group * groupSize, groupSize)).ToArray();
                    using var rowIndex = torch.tensor(groupRows.Select(r => (long)r).ToArray(), device: logits.device);
                    var logp = logits.index_select(0, rowIndex).log_softmax(-1);
                    var groupIds = groupRows.Select(r => decode.Ids[r]).ToList();
                    var processed = _processors.Process(groupIds, logp, scores => diversity.Process(scores, currentTokens, group));
                    if (samplers is not null) processed = _processors.Warp(groupIds, processed); // HF warps before adding the beam scores
                    var running = torch.tensor(groupRows.Select(r => beamScores[r]).ToArray(), device: logits.device).to(ScalarType.Float32);
                    var withBeams = processed + running.unsqueeze(1);
                    var candidates = samplers is null
                        ? BeamSearchScorer.TopCandidates(withBeams, prompts, groupSize, keep)
                        : SampledCandidates(withBeams, prompts, groupSize, keep, samplers);
                    var next = scorer.Process(groupRows.Select(r => newTokens[r]).ToList(), candidates, eos.ToArray(), pad, step + 1, group);
                    for (int i = 0; i < groupRows.Length; i++)
                    {
                        int row = groupRows[i], source = groupRows[next[i].SourceRow];
                        nextScores[row] = next[i].Score;
                        currentTokens[row] = next[i].Token;
                        sourceRows[row] = source;
                        nextTokens[row] = [.. newTokens[source], next[i].Token];
                    }
                }
                beamScores = nextScores;
                newTokens = nextTokens;
                decode.Reorder(sourceRows);
                decode.Append(currentTokens);
                if (scorer.IsDone) break;
            }
            var best = scorer.Finalize(newTokens, beamScores, config.NumReturnSequences, eos.Count > 0 ? eos[0] : pad);
            var logprobs = config.Logprobs is { } top ? RescoreContinuations(best, top) : null;
            return best.Select((b, i) => new GeneratedSequence(b.PromptIndex, b.Tokens, _tokenizer.Decode(b.Tokens), logprobs?[i],
                b.EndedWithEos ? FinishReason.EndOfSequence : FinishReason.Length, b.Score)).ToList();
        }

        /// <summary>
        /// Beam search keeps no per-token history of the model's distribution, so the returned sequences' tokens are
        /// scored afterwards in one batched forward pass over prompt + continuation (the same numbers a step would give).
        /// </summary>
        private List<TokenLogprob>[] RescoreContinuations(IReadOnlyList<BeamSearchScorer.Finished> results, int top)
        {
            using var scope = torch.NewDisposeScope();
            var rows = results.Select(r => batch.InputIds[r.PromptIndex].Select(v => (int)v).Concat(r.Tokens).ToList()).ToList();
            var masks = results.Select(r => batch.AttentionMask[r.PromptIndex].Concat(Enumerable.Repeat(1L, r.Tokens.Count)).ToList()).ToList();
            int width = rows.Max(r => r.Count);
            var padded = new BatchEncoding(
                rows.Select(r => r.Select(v => (long)v).Concat(Enumerable.Repeat((long)pad, width - r.Count)).ToArray()).ToArray(),
                masks.Select(m => m.Concat(Enumerable.Repeat(0L, width - m.Count)).ToArray()).ToArray());
            using var output = _model.forward(padded.InputIdsTensor(_model.Device), padded.AttentionMaskTensor(_model.Device),
                BatchEncoding.ToTensor(padded.PositionIds(), _model.Device));
            var logits = output.Logits.to(ScalarType.Float32);
            var result = new List<TokenLogprob>[results.Count];
            for (int i = 0; i < results.Count; i++)
            {
                int start = batch.Length - 1; // the logits at position p predict token p + 1
                var rowLogits = logits[i].narrow(0, start, results[i].Tokens.Count);
                result[i] = [.. LogprobCalculator.Compute(rowLogits, results[i].Tokens, top)];
            }
            return result;
        }

        /// <summary>Beam sampling: per prompt, <paramref name="keep"/> distinct (beam, token) pairs drawn from softmax of
        /// the running scores, then ranked by score, as HF's <c>_beam_sample</c> does.</summary>
        private static List<List<BeamSearchScorer.Candidate>> SampledCandidates(Tensor scores, int prompts, int groupSize, int keep, SequenceSampler[] samplers)
        {
            int width = (int)(groupSize * scores.shape[1]), vocab = (int)scores.shape[1];
            var flat = scores.view(prompts, width);
            var probs = flat.softmax(-1).cpu().data<float>().ToArray();
            var values = flat.cpu().data<float>().ToArray();
            return Enumerable.Range(0, prompts).Select(p => samplers[p].SampleDistinct(probs.AsSpan(p * width, width), keep)
                .Select(i => new BeamSearchScorer.Candidate(values[p * width + i], i % vocab, i / vocab))
                .OrderByDescending(c => c.Score).ToList()).ToList();
        }

        private static int[] Argmax(Tensor scores) => scores.argmax(-1).cpu().data<long>().Select(v => (int)v).ToArray();

        private static int[] Sample(Tensor scores, SequenceSampler[] samplers)
        {
            var probs = scores.softmax(-1).cpu();
            int vocab = (int)probs.shape[1];
            var all = probs.data<float>().ToArray();
            return samplers.Select((s, r) => s.Sample(all.AsSpan(r * vocab, vocab))).ToArray();
        }
    }
}
