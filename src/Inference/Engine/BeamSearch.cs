using Gpt2Orleans.Inference.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// Beam search as a request-level policy on top of the engine's loop: HF's <c>_beam_search</c>, <c>_beam_sample</c>
/// (do_sample) and <c>_group_beam_search</c> (num_beam_groups &gt; 1, diversity_penalty), with length penalty and
/// early stopping. Each step it takes its beams' logits (in beam order) and says which beam each next beam continues
/// with which token; the scheduler forks and frees the beams' KV accordingly. A step is taken group by group
/// (<see cref="BeginStep"/>, then per group <see cref="GroupTensors"/> and <see cref="CompleteGroup"/>, then
/// <see cref="EndStep"/>) so that the engine brings every beam request's group to the host in one copy: a step
/// costs one device-to-host copy per beam group (a group's diversity penalty needs the tokens the groups before it
/// chose), whatever the number of requests. It holds no tensors between steps.
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
    private readonly int _keep;
    private readonly BeamSearchScorer _scorer;
    private readonly HammingDiversityLogitsProcessor _diversity;
    private readonly SequenceSampler? _sampler;
    private double[] _scores = [];
    private List<TokenLogprob>[]? _logprobs;
    private int _steps;

    // The step in progress, from BeginStep to EndStep (its tensors live in the caller's dispose scope).
    private Tensor? _logp;
    private Tensor[]? _rawParts;
    private Func<int, int, TokenLogprob>? _raw;
    private IReadOnlyList<EngineSequence> _beams = [];
    private NextBeam[] _next = [];
    private double[] _nextScores = [];
    private int[] _currentTokens = [];

    public BeamSearch(GenerationConfig config, IReadOnlyList<int> eos, int pad, int maxNewTokens)
    {
        _config = config;
        _eos = eos;
        _pad = pad;
        _maxNewTokens = maxNewTokens;
        _groupSize = config.NumBeams / config.NumBeamGroups;
        _keep = Math.Max(2, 1 + eos.Count) * _groupSize;
        _scorer = new BeamSearchScorer(1, config, maxNewTokens);
        _diversity = new HammingDiversityLogitsProcessor(config.DiversityPenalty, config.NumBeams, config.NumBeamGroups);
        _sampler = config.Samples ? new SequenceSampler(SequenceSampler.SeedFor(config.Seed, 0)) : null;
    }

    public bool IsDone => _scorer.IsDone || _steps >= _maxNewTokens;

    public int Groups => _config.NumBeamGroups;

    /// <param name="logits">(num_beams, V) float32 raw logits, in beam order (at the first step each beam's is the prompt's)</param>
    public void BeginStep(Tensor logits, IReadOnlyList<EngineSequence> beams)
    {
        int count = _config.NumBeams;
        // Only the first beam of each group is live at first, so the identical copies do not fill the beam.
        if (_steps == 0) _scores = Enumerable.Range(0, count).Select(r => r % _groupSize == 0 ? 0.0 : -1e9).ToArray();
        _logp = logits.log_softmax(-1);
        _rawParts = _config.Logprobs is { } top ? RawParts(_logp, top) : null;
        _raw = null;
        _beams = beams;
        _next = new NextBeam[count];
        _nextScores = new double[count];
        _currentTokens = new int[count];
    }

    /// <summary>
    /// What group <paramref name="group"/> needs on the host, computed once the groups before it are complete: its top
    /// candidates' scores and flat ids (or, sampling, its probabilities and scores); the first group also carries the
    /// raw distributions when log-probabilities are asked for.
    /// </summary>
    public Tensor[] GroupTensors(int group)
    {
        int first = group * _groupSize;
        var ids = _beams.Skip(first).Take(_groupSize).Select(b => (IReadOnlyList<int>)b.Tokens).ToList();
        var processors = _beams[first].Processors;
        var processed = processors.Process(ids, _logp!.narrow(0, first, _groupSize).clone(), s => _diversity.Process(s, _currentTokens, group));
        if (_sampler is not null) processed = processors.Warp(ids, processed); // HF warps before adding the beam scores
        var withBeams = processed + torch.tensor(_scores[first..(first + _groupSize)], device: processed.device).to(ScalarType.Float32).unsqueeze(1);
        Tensor[] parts;
        if (_sampler is null)
        {
            var (values, indices) = withBeams.view(1, -1).topk(_keep, 1, largest: true, sorted: true);
            parts = [values, indices];
        }
        else
        {
            var flat = withBeams.view(1, -1);
            parts = [flat.softmax(-1), flat];
        }
        return group == 0 && _rawParts is not null ? [.. _rawParts, .. parts] : parts;
    }

    /// <summary>Chooses the group's next beams from what <see cref="GroupTensors"/> gave, copied to <paramref name="host"/> from <paramref name="offset"/>; returns the offset past it.</summary>
    public int CompleteGroup(int group, double[] host, int offset)
    {
        int first = group * _groupSize, vocab = (int)_logp!.size(1);
        if (group == 0 && _rawParts is not null) offset = ReadRaw(host, offset, vocab);
        List<BeamSearchScorer.Candidate> candidates;
        if (_sampler is null)
        {
            candidates = BeamSearchScorer.ReadCandidates(host.AsSpan(offset, 2 * _keep), _keep, vocab);
            offset += 2 * _keep;
        }
        else
        {
            int n = _groupSize * vocab;
            candidates = SampledCandidates(host.AsSpan(offset, 2 * n), vocab);
            offset += 2 * n;
        }
        var generated = _beams.Skip(first).Take(_groupSize).Select(b => (IReadOnlyList<int>)b.Tokens.Skip(b.PromptLength).ToList()).ToList();
        var raw = _raw;
        var chosen = _scorer.Process(generated, [candidates], _eos.ToArray(), _pad, _steps + 1, group,
            raw is null ? null : (row, token) => (object)Extend(first + row, token, raw));
        for (int i = 0; i < _groupSize; i++)
        {
            _next[first + i] = new NextBeam(first + chosen[i].SourceRow, chosen[i].Token);
            _nextScores[first + i] = chosen[i].Score;
            _currentTokens[first + i] = chosen[i].Token;
        }
        return offset;
    }

    /// <summary>Ends the step: which beam each next beam continues, with which token.</summary>
    public IReadOnlyList<NextBeam> EndStep()
    {
        if (_raw is { } raw) _logprobs = _next.Select(n => Extend(n.Source, n.Token, raw)).ToArray();
        _scores = _nextScores;
        _steps++;
        (_logp, _rawParts, _raw, _beams) = (null, null, null, []);
        return _next;
    }

    /// <summary>HF's finalize: the open beams join the hypotheses, and the best num_return_sequences come back, best first.</summary>
    public IReadOnlyList<BeamSearchScorer.Finished> Finalize(IReadOnlyList<EngineSequence> beams) =>
        _scorer.Finalize(beams.Select(b => (IReadOnlyList<int>)b.Tokens.Skip(b.PromptLength).ToList()).ToList(), _scores,
            _config.NumReturnSequences, _eos.Count > 0 ? _eos[0] : _pad, _logprobs);

    /// <summary>The log-probabilities of beam <paramref name="source"/>'s tokens followed by <paramref name="token"/>.</summary>
    private List<TokenLogprob> Extend(int source, int token, Func<int, int, TokenLogprob> raw) =>
        [.. _logprobs?[source] ?? [], raw(source, token)];

    /// <summary>Every beam's raw distribution and its top tokens, for the log-probability of any token it chooses.</summary>
    private static Tensor[] RawParts(Tensor logp, int top)
    {
        var (values, indices) = logp.topk(Math.Max(1, top), 1);
        return [logp, values, indices];
    }

    private int ReadRaw(double[] host, int offset, int vocab)
    {
        int top = _config.Logprobs!.Value, width = Math.Max(1, top), count = _config.NumBeams;
        int topValues = offset + count * vocab, topIds = topValues + count * width;
        _raw = (row, token) => new TokenLogprob(token, (float)host[offset + (long)row * vocab + token],
            Enumerable.Range(row * width, top).Select(k => new TopLogprob((int)host[topIds + k], (float)host[topValues + k])).ToArray());
        return topIds + count * width;
    }

    /// <summary>Beam sampling: distinct (beam, token) pairs drawn from softmax of the running scores (the first half of
    /// <paramref name="host"/>; the scores are the second), then ranked by score, as HF's <c>_beam_sample</c> does.</summary>
    private List<BeamSearchScorer.Candidate> SampledCandidates(ReadOnlySpan<double> host, int vocab)
    {
        int n = host.Length / 2;
        var probabilities = new float[n];
        for (int i = 0; i < n; i++) probabilities[i] = (float)host[i];
        var candidates = new List<BeamSearchScorer.Candidate>(_keep);
        foreach (int i in _sampler!.SampleDistinct(probabilities, _keep))
            candidates.Add(new BeamSearchScorer.Candidate((float)host[n + i], i % vocab, i / vocab));
        return candidates.OrderByDescending(c => c.Score).ToList();
    }
}
