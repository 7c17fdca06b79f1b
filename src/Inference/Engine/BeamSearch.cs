using Gpt2Orleans.Inference.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// Beam search as a request-level policy on top of the engine's loop: HF's <c>_beam_search</c>, <c>_beam_sample</c>
/// (do_sample) and <c>_group_beam_search</c> (num_beam_groups &gt; 1, diversity_penalty), with length penalty and
/// early stopping. Each step it takes its beams' logits (in beam order) and says which beam each next beam continues
/// with which token; the scheduler forks and frees the beams' KV accordingly. It holds no tensors between steps.
/// </summary>
internal sealed class BeamSearch
{
    /// <summary>Next beam j continues beam <see cref="Source"/> with <see cref="Token"/>.</summary>
    public sealed record NextBeam(int Source, int Token);

    private readonly GenerationConfig _config;
    private readonly IReadOnlyList<int> _eos;
    private readonly int _pad;
    private readonly int _maxNewTokens;
    private readonly int _groupSize;
    private readonly BeamSearchScorer _scorer;
    private readonly HammingDiversityLogitsProcessor _diversity;
    private readonly SequenceSampler? _sampler;
    private double[] _scores = [];
    private List<TokenLogprob>[]? _logprobs;
    private int _steps;

    public BeamSearch(GenerationConfig config, IReadOnlyList<int> eos, int pad, int maxNewTokens)
    {
        _config = config;
        _eos = eos;
        _pad = pad;
        _maxNewTokens = maxNewTokens;
        _groupSize = config.NumBeams / config.NumBeamGroups;
        _scorer = new BeamSearchScorer(1, config, maxNewTokens);
        _diversity = new HammingDiversityLogitsProcessor(config.DiversityPenalty, config.NumBeams, config.NumBeamGroups);
        _sampler = config.Samples ? new SequenceSampler(SequenceSampler.SeedFor(config.Seed, 0)) : null;
    }

    public bool IsDone => _scorer.IsDone || _steps >= _maxNewTokens;

    /// <param name="logits">(num_beams, V) float32 raw logits, in beam order (at the first step each beam's is the prompt's)</param>
    public IReadOnlyList<NextBeam> Step(Tensor logits, IReadOnlyList<EngineSequence> beams)
    {
        using var scope = torch.NewDisposeScope();
        int count = _config.NumBeams;
        // Only the first beam of each group is live at first, so the identical copies do not fill the beam.
        if (_steps == 0) _scores = Enumerable.Range(0, count).Select(r => r % _groupSize == 0 ? 0.0 : -1e9).ToArray();
        var logp = logits.log_softmax(-1);
        var raw = _config.Logprobs is not null ? RawLogprobs(logp) : null;
        var next = new NextBeam[count];
        var nextScores = new double[count];
        var currentTokens = new int[count];
        int keep = Math.Max(2, 1 + _eos.Count) * _groupSize;
        for (int group = 0; group < _config.NumBeamGroups; group++)
        {
            int first = group * _groupSize;
            var ids = beams.Skip(first).Take(_groupSize).Select(b => (IReadOnlyList<int>)b.Tokens).ToList();
            var processors = beams[first].Processors;
            var processed = processors.Process(ids, logp.narrow(0, first, _groupSize).clone(), s => _diversity.Process(s, currentTokens, group));
            if (_sampler is not null) processed = processors.Warp(ids, processed); // HF warps before adding the beam scores
            var withBeams = processed + torch.tensor(_scores[first..(first + _groupSize)], device: logits.device).to(ScalarType.Float32).unsqueeze(1);
            var candidates = _sampler is null
                ? BeamSearchScorer.TopCandidates(withBeams, 1, _groupSize, keep)
                : [SampledCandidates(withBeams, keep)];
            var generated = beams.Skip(first).Take(_groupSize).Select(b => (IReadOnlyList<int>)b.Tokens.Skip(b.PromptLength).ToList()).ToList();
            var chosen = _scorer.Process(generated, candidates, _eos.ToArray(), _pad, _steps + 1, group,
                raw is null ? null : (row, token) => (object)Extend(first + row, token, raw));
            for (int i = 0; i < _groupSize; i++)
            {
                int source = first + chosen[i].SourceRow;
                next[first + i] = new NextBeam(source, chosen[i].Token);
                nextScores[first + i] = chosen[i].Score;
                currentTokens[first + i] = chosen[i].Token;
            }
        }
        if (raw is not null) _logprobs = next.Select(n => Extend(n.Source, n.Token, raw)).ToArray();
        _scores = nextScores;
        _steps++;
        return next;
    }

    /// <summary>HF's finalize: the open beams join the hypotheses, and the best num_return_sequences come back, best first.</summary>
    public IReadOnlyList<BeamSearchScorer.Finished> Finalize(IReadOnlyList<EngineSequence> beams) =>
        _scorer.Finalize(beams.Select(b => (IReadOnlyList<int>)b.Tokens.Skip(b.PromptLength).ToList()).ToList(), _scores,
            _config.NumReturnSequences, _eos.Count > 0 ? _eos[0] : _pad, _logprobs);

    /// <summary>The log-probabilities of beam <paramref name="source"/>'s tokens followed by <paramref name="token"/>.</summary>
    private List<TokenLogprob> Extend(int source, int token, Func<int, int, TokenLogprob> raw) =>
        [.. _logprobs?[source] ?? [], raw(source, token)];

    /// <summary>Every beam's raw distribution and its top tokens on the host (one copy), for the log-probability of any token it chooses.</summary>
    private Func<int, int, TokenLogprob> RawLogprobs(Tensor logp)
    {
        int top = _config.Logprobs!.Value, vocab = (int)logp.shape[1], width = Math.Max(1, top);
        var (values, indices) = logp.topk(width, 1);
        var host = HostCopy.Float32(logp, values, indices); // all, then the top values, then their ids
        long topValues = logp.numel(), topIds = topValues + values.numel();
        return (row, token) => new TokenLogprob(token, host[(long)row * vocab + token],
            Enumerable.Range(row * width, top).Select(k => new TopLogprob((int)host[topIds + k], host[topValues + k])).ToArray());
    }

    /// <summary>Beam sampling: <paramref name="keep"/> distinct (beam, token) pairs drawn from softmax of the running
    /// scores, then ranked by score, as HF's <c>_beam_sample</c> does.</summary>
    private List<BeamSearchScorer.Candidate> SampledCandidates(Tensor scores, int keep)
    {
        int vocab = (int)scores.shape[1];
        var flat = scores.view(1, -1);
        var host = HostCopy.Float32(flat.softmax(-1), flat); // probabilities, then scores
        int n = (int)flat.numel();
        return _sampler!.SampleDistinct(host.AsSpan(0, n), keep)
            .Select(i => new BeamSearchScorer.Candidate(host[n + i], i % vocab, i / vocab))
            .OrderByDescending(c => c.Score).ToList();
    }
}
