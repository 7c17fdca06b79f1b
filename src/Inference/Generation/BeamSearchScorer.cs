namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// HF's <c>BeamSearchScorer</c>: for each prompt (and beam group) it turns the ranked candidates of a step into the
/// next beams, moves candidates ending in eos into <see cref="BeamHypotheses"/>, and at the end picks the best.
/// Rows are laid out prompt-major: row = prompt · num_beams + beam.
/// </summary>
public sealed class BeamSearchScorer
{
    public sealed record Candidate(double Score, int Token, int Beam);
    public sealed record NextBeam(double Score, int Token, int SourceRow);

    private readonly int _batchSize;
    private readonly int _groups;
    private readonly int _groupSize;
    private readonly BeamHypotheses[] _hypotheses; // [prompt · groups + group]
    private readonly bool[] _done;

    public BeamSearchScorer(int batchSize, GenerationConfig config, int maxNewTokens)
    {
        _batchSize = batchSize;
        _groups = config.NumBeamGroups;
        _groupSize = config.NumBeams / config.NumBeamGroups;
        _hypotheses = Enumerable.Range(0, batchSize * _groups)
            .Select(_ => new BeamHypotheses(_groupSize, config.LengthPenalty, config.EarlyStopping, maxNewTokens)).ToArray();
        _done = new bool[batchSize * _groups];
    }

    public bool IsDone => _done.All(d => d);

    /// <summary>
    /// One prompt's ranked candidates from its top-k over (beam · V) scores as copied to the host: <paramref name="keep"/>
    /// scores, then their flat indices (exact as doubles for any beam count).
    /// </summary>
    public static List<Candidate> ReadCandidates(ReadOnlySpan<double> host, int keep, int vocab)
    {
        var candidates = new List<Candidate>(keep);
        for (int k = 0; k < keep; k++)
        {
            long flat = (long)host[keep + k];
            candidates.Add(new Candidate((float)host[k], (int)(flat % vocab), (int)(flat / vocab)));
        }
        return candidates;
    }

    /// <param name="beams">the group's current beams' new tokens, [prompt · groupSize + beam]</param>
    /// <param name="candidates">per prompt, the top candidates sorted by score (beam = index within the group)</param>
    /// <param name="generatedLength">new tokens including this step's (HF 4.44's cur_len + 1 − prompt length: a
    /// hypothesis ending in eos is normalised by its length with the eos counted, though stored without it)</param>
    /// <param name="payloadFor">what to attach to a hypothesis that ends with eos, given its row and the eos token</param>
    public NextBeam[] Process(IReadOnlyList<IReadOnlyList<int>> beams, IReadOnlyList<IReadOnlyList<Candidate>> candidates,
        IReadOnlyCollection<int> eosTokenIds, int padTokenId, int generatedLength, int group = 0, Func<int, int, object?>? payloadFor = null)
    {
        var next = new NextBeam[_batchSize * _groupSize];
        for (int prompt = 0; prompt < _batchSize; prompt++)
        {
            int hyp = prompt * _groups + group;
            if (_done[hyp])
            {
                for (int j = 0; j < _groupSize; j++) next[prompt * _groupSize + j] = new NextBeam(0, padTokenId, prompt * _groupSize);
                continue;
            }
            int filled = 0;
            for (int rank = 0; rank < candidates[prompt].Count && filled < _groupSize; rank++)
            {
                var candidate = candidates[prompt][rank];
                int row = prompt * _groupSize + candidate.Beam;
                if (eosTokenIds.Contains(candidate.Token))
                {
                    if (rank >= _groupSize) continue; // an eos ranked below the top num_beams is not a hypothesis
                    _hypotheses[hyp].Add(beams[row].ToArray(), candidate.Score, generatedLength, endedWithEos: true, payloadFor?.Invoke(row, candidate.Token));
                }
                else next[prompt * _groupSize + filled++] = new NextBeam(candidate.Score, candidate.Token, row);
            }
            if (filled < _groupSize)
                throw new InvalidOperationException($"beam search found only {filled} non-eos candidates for {_groupSize} beams");
            _done[hyp] = _hypotheses[hyp].IsDone(candidates[prompt][0].Score, generatedLength);
        }
        return next;
    }

    public sealed record Finished(int PromptIndex, IReadOnlyList<int> Tokens, double Score, bool EndedWithEos, object? Payload = null);

    /// <summary>Adds the open beams (all rows, [prompt · num_beams + beam]) and returns the best per prompt.</summary>
    /// <param name="payloads">what to attach to each open beam's hypothesis, by row</param>
    public IReadOnlyList<Finished> Finalize(IReadOnlyList<IReadOnlyList<int>> beams, IReadOnlyList<double> beamScores,
        int numReturnSequences, int eosTokenId, IReadOnlyList<object?>? payloads = null)
    {
        for (int hyp = 0; hyp < _hypotheses.Length; hyp++)
        {
            if (_done[hyp]) continue;
            int prompt = hyp / _groups, group = hyp % _groups;
            for (int j = 0; j < _groupSize; j++)
            {
                int row = prompt * _groups * _groupSize + group * _groupSize + j;
                _hypotheses[hyp].Add(beams[row].ToArray(), beamScores[row], beams[row].Count, endedWithEos: false, payloads?[row]);
            }
        }
        var results = new List<Finished>();
        for (int prompt = 0; prompt < _batchSize; prompt++)
        {
            // Python: sorted(candidates, key=score) is stable; pop() takes from the end.
            var sorted = Enumerable.Range(0, _groups).SelectMany(g => _hypotheses[prompt * _groups + g].Beams)
                .OrderBy(h => h.Score).ToList();
            for (int k = 0; k < numReturnSequences; k++)
            {
                var best = sorted[^1];
                sorted.RemoveAt(sorted.Count - 1);
                var tokens = best.EndedWithEos ? best.Tokens.Append(eosTokenId).ToArray() : best.Tokens;
                results.Add(new Finished(prompt, tokens, best.Score, best.EndedWithEos, best.Payload));
            }
        }
        return results;
    }
}
