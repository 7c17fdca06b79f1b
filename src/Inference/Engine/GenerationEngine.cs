using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// One model as a shared service (continuous batching over a paged KV cache, as vLLM): a dedicated loop admits
/// requests between steps, runs every running sequence's next token (and prefill chunks) as one flat batch,
/// samples each sequence with its own processors and seeded generator, streams tokens out and retires finished
/// sequences at once. Only the loop thread touches tensors.
/// </summary>
public sealed class GenerationEngine : IDisposable
{
    private readonly Gpt2LMHeadModel _model;
    private readonly Gpt2Tokenizer _tokenizer;
    private readonly EngineOptions _options;
    private readonly KvBlockPool _pool;
    private readonly Scheduler _scheduler;
    private readonly EngineMetrics _metrics;
    private readonly ConcurrentQueue<EngineSequence> _arrivals = new();
    private readonly ConcurrentQueue<EngineRequestState> _cancellations = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _loop;
    private readonly Dictionary<EngineRequestState, List<EngineSequence>> _sequences = [];
    private readonly Dictionary<long, KeptSequence> _kept = [];
    private readonly ConcurrentQueue<long> _releases = new();
    private readonly ConcurrentQueue<Action> _loopWork = new(); // work that must touch the pool's tensors, run by the loop

    /// <summary>A finished conversation whose KV stays in the pool for its next turn.</summary>
    private sealed record KeptSequence(string Tenant, IReadOnlyList<int> Tokens, int Computed, long LastUsed);
    private volatile bool _stopping;
    private volatile EngineStats _stats;
    private long _nextSequenceId;
    private long _arrival;
    private int _queued;
    private long _rejections, _promptTokens, _generatedTokens;

    public GenerationEngine(Gpt2LMHeadModel model, Gpt2Tokenizer tokenizer, EngineOptions? options = null)
    {
        _options = options ?? new EngineOptions();
        _options.Validate();
        _model = model;
        _tokenizer = tokenizer;
        int blocks = _options.KvBlocks ?? KvBlockPool.BlocksForBytes(model.Config, _options.KvCacheBytes, _options.BlockSize, model.DType);
        if (blocks <= 0) throw new ArgumentException($"{nameof(EngineOptions.KvCacheBytes)}: {_options.KvCacheBytes} bytes do not hold one KV block");
        _pool = new KvBlockPool(model.Config, blocks, _options.BlockSize, model.DType, model.Device);
        _scheduler = new Scheduler(_options, _pool.Allocator, ReleaseOldestKept);
        _stats = Snapshot();
        _metrics = new EngineMetrics(_options.ModelName, () => _stats);
        _loop = new Thread(Run) { IsBackground = true, Name = $"engine {_options.ModelName}" };
        _loop.Start();
    }

    public EngineStats Stats => _stats;
    public long KvBytesPerToken => _pool.BytesPerToken;

    /// <summary>
    /// Queues a request and streams its tokens. Bad parameters throw <see cref="ArgumentException"/> and a full queue
    /// <see cref="EngineOverloadedException"/> here, before anything is queued. Cancelling (or abandoning the stream)
    /// frees the request's KV at once.
    /// </summary>
    public IAsyncEnumerable<TokenEvent> SubmitAsync(EngineRequest request, CancellationToken cancellationToken = default)
    {
        var state = Prepare(request);
        Enqueue(state);
        return Read(state, cancellationToken);
    }

    /// <summary>
    /// Prefill-only scoring, batched with generation: each token's log-probability given its prefix (null for the
    /// first) and, when asked, the most likely alternatives at each position. Perplexity is exp(−mean).
    /// </summary>
    public Task<IReadOnlyList<TokenLogprob?>> ScoreAsync(string tenantId, IReadOnlyList<int> tokens, int topLogprobs = 0, CancellationToken cancellationToken = default)
    {
        if (topLogprobs is < 0 or > 20) throw new ArgumentException($"logprobs: must be between 0 and 20, got {topLogprobs}", "logprobs");
        var request = new EngineRequest(tenantId, tokens, new GenerationConfig { MaxNewTokens = 0 });
        var prepared = Prepare(request);
        var state = new EngineRequestState(request, prepared.Eos, 0, _tokenizer)
        {
            Score = new TaskCompletionSource<IReadOnlyList<TokenLogprob?>>(TaskCreationOptions.RunContinuationsAsynchronously),
            ScoreTopLogprobs = topLogprobs,
        };
        Enqueue(state);
        var registration = cancellationToken.Register(() => Cancel(state));
        state.Score.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        return state.Score.Task;
    }

    private void Enqueue(EngineRequestState state)
    {
        // Waiting = not yet picked up by the loop + queued in the scheduler (read across threads: a bound, not an exact count).
        if (Interlocked.Increment(ref _queued) + _scheduler.WaitingCount > _options.MaxWaitingRequests)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _rejections);
            _metrics.Rejected();
            throw new EngineOverloadedException(RetryAfter(), $"the engine for {_options.ModelName} has {_options.MaxWaitingRequests} requests waiting; retry later");
        }
        _arrivals.Enqueue(new EngineSequence(Interlocked.Increment(ref _nextSequenceId), 0, state, state.Request.PromptIds, Interlocked.Increment(ref _arrival)));
        _wake.Release();
    }

    private EngineRequestState Prepare(EngineRequest request)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        var config = request.Config;
        config.Validate(_model.Config.VocabSize);
        if (string.IsNullOrEmpty(request.TenantId)) throw new ArgumentException("tenant: a request needs a tenant id", "tenant");
        if (config.IsBeamSearch && (config.NumBeamGroups > 1 || config.DoSample))
            throw new ArgumentException("num_beam_groups: diverse beam search and beam sampling run in TextGenerator, not the engine", "num_beam_groups");
        if (config.IsBeamSearch && config.StopStrings is { Count: > 0 })
            throw new ArgumentException("stop_strings: not supported with beam search", "stop_strings");
        if (config.IsBeamSearch && request.KeepSequence)
            throw new ArgumentException("num_beams: a beam search's sequence cannot be kept for a next turn", "num_beams");
        if (request.KeepSequence && config.NumReturnSequences > 1)
            throw new ArgumentException("num_return_sequences: only a single sequence can be kept for the next turn", "num_return_sequences");
        if (request.ContinueSequence is not null && request.ForkSequence is not null)
            throw new ArgumentException("fork: a request continues a sequence or forks one, not both", "fork");
        if (request.PromptIds.Count == 0) throw new ArgumentException("prompt: at least one token is needed", "prompt");
        foreach (var id in request.PromptIds)
            if (id < 0 || id >= _model.Config.VocabSize)
                throw new ArgumentOutOfRangeException("prompt", $"token id {id} is outside the vocabulary (0..{_model.Config.VocabSize - 1})");
        int maxNew = config.MaxNewTokens ?? Math.Max(0, config.MaxLength - request.PromptIds.Count);
        int total = request.PromptIds.Count + maxNew;
        if (total > _model.Config.NPositions)
            throw new ArgumentException($"max_new_tokens: the prompt ({request.PromptIds.Count} tokens) plus {maxNew} new tokens exceeds the model's context of {_model.Config.NPositions} positions", "max_new_tokens");
        int blocksNeeded = _pool.Allocator.BlocksFor(total);
        if (blocksNeeded > _pool.Allocator.TotalBlocks)
            throw new ArgumentException($"max_new_tokens: {total} tokens need {blocksNeeded} KV blocks; this engine's pool holds {_pool.Allocator.TotalBlocks}", "max_new_tokens");
        return new EngineRequestState(request, config.ResolveEos(_model.Config), maxNew, _tokenizer)
        {
            Beam = config.IsBeamSearch ? new BeamSearchScorer(1, config, maxNew) : null,
        };
    }

    private async IAsyncEnumerable<TokenEvent> Read(EngineRequestState state, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var registration = cancellationToken.Register(() => Cancel(state));
        bool completed = false;
        try
        {
            await foreach (var item in state.Events.Reader.ReadAllAsync(cancellationToken))
            {
                if (item.KeptSequence is not null) state.KeptHandedOver = true; // the reader owns it from here
                yield return item;
            }
            completed = true;
        }
        finally
        {
            if (!completed) Cancel(state); // the consumer stopped reading: free the KV now
        }
    }

    /// <summary>Drops a kept sequence's KV (its full blocks stay in the prefix cache until memory is needed).</summary>
    public void ReleaseSequence(long sequence)
    {
        _releases.Enqueue(sequence);
        _wake.Release();
    }

    /// <summary>
    /// A kept sequence's KV and tokens copied out (to spill a conversation to disk), or null when it is not kept
    /// (any more). The sequence stays kept; release it after.
    /// </summary>
    public Task<KvSnapshot?> ExportKeptAsync(long sequence) => OnLoop(() =>
        _kept.TryGetValue(sequence, out var kept) ? _pool.Snapshot(sequence, kept.Tokens, kept.Computed) : null);

    /// <summary>
    /// Makes a kept sequence of <paramref name="tenantId"/> from a snapshot whose tokens are the conversation's
    /// (blocks the prefix cache already holds are shared, the rest written from the snapshot), so the next turn
    /// continues it without recomputing. Null when the pool has no room for it now.
    /// </summary>
    public Task<long?> ImportKeptAsync(string tenantId, KvSnapshot snapshot)
    {
        if (snapshot.Tokens.Length == 0 || snapshot.Computed > snapshot.Tokens.Length || snapshot.Tokens.Length > _model.Config.NPositions)
            throw new ArgumentException("the KV snapshot's tokens do not fit this model", nameof(snapshot));
        return OnLoop<long?>(() =>
        {
            long id = Interlocked.Increment(ref _nextSequenceId);
            if (_pool.Allocator.TryAllocate(id, snapshot.Tokens, Scheduler.PrefixSalt(_options.ModelName, tenantId)) is not { } cached) return null;
            try { _pool.Restore(id, snapshot, Math.Min(cached, snapshot.Computed)); }
            catch { _pool.Allocator.Free(id); throw; }
            _pool.Allocator.MarkComputed(id, snapshot.Computed);
            _kept[id] = new KeptSequence(tenantId, snapshot.Tokens, snapshot.Computed, Interlocked.Increment(ref _arrival));
            return id;
        });
    }

    /// <summary>Runs <paramref name="work"/> on the loop thread (the only one that touches the pool's tensors).</summary>
    private Task<T> OnLoop<T>(Func<T> work)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _loopWork.Enqueue(() =>
        {
            try { done.TrySetResult(work()); }
            catch (Exception e) { done.TrySetException(e); }
        });
        _wake.Release();
        return done.Task;
    }

    private void Cancel(EngineRequestState state)
    {
        if (state.Cancelled) return;
        state.Cancelled = true;
        _cancellations.Enqueue(state);
        _wake.Release();
    }

    private TimeSpan RetryAfter() =>
        TimeSpan.FromSeconds(Math.Clamp((_queued + _scheduler.WaitingCount) / (double)_options.MaxRunningSequences, 1, 60));

    private void Run()
    {
        while (!_stopping)
        {
            bool idle = _arrivals.IsEmpty && _cancellations.IsEmpty && _releases.IsEmpty && _loopWork.IsEmpty
                && _scheduler.RunningCount == 0 && _scheduler.WaitingCount == 0;
            if (idle)
            {
                _wake.Wait(TimeSpan.FromMilliseconds(200));
                continue;
            }
            Admit();
            long preemptionsBefore = _scheduler.Preemptions;
            var plan = _scheduler.Schedule();
            if (_scheduler.Preemptions > preemptionsBefore) _metrics.Preempted(_scheduler.Preemptions - preemptionsBefore);
            if (plan.IsEmpty)
            {
                _wake.Wait(TimeSpan.FromMilliseconds(5)); // waiting for memory held by kept or cancelled sequences
                continue;
            }
            try { Step(plan); }
            catch (Exception e) when (!_stopping)
            {
                // A failed step fails the requests in it and leaves everyone else running.
                foreach (var request in plan.Work.Select(w => w.Sequence.Request).Distinct().ToList()) Finish(request, e);
            }
            _stats = Snapshot();
        }
    }

    /// <summary>Moves new requests into the scheduler and drops cancelled ones (their blocks are freed here).</summary>
    private void Admit()
    {
        while (_loopWork.TryDequeue(out var work)) work();
        while (_releases.TryDequeue(out var released))
            if (_kept.Remove(released)) _pool.Allocator.Free(released);
        while (_arrivals.TryDequeue(out var arrived))
        {
            Interlocked.Decrement(ref _queued);
            if (arrived.Request.Cancelled)
            {
                arrived.Request.Events.Writer.TryComplete();
                arrived.Request.Score?.TrySetCanceled();
                continue;
            }
            var sequence = ReuseKept(arrived);
            _sequences[sequence.Request] = [sequence];
            _scheduler.Enqueue(sequence);
        }
        while (_cancellations.TryDequeue(out var request))
            if (_sequences.ContainsKey(request)) Finish(request, new OperationCanceledException("the request was cancelled"));
            // It had finished, but its reader went away before reading the last event: nobody holds the kept handle.
            else if (request.KeptSequence is { } kept && !request.KeptHandedOver && _kept.Remove(kept)) _pool.Allocator.Free(kept);
        _stats = Snapshot();
    }

    /// <summary>
    /// A request naming a kept sequence of its tenant whose tokens start its prompt continues it (or forks it): that
    /// KV is reused and only the rest is prefilled. Otherwise the request starts afresh (the prefix cache may still hit).
    /// </summary>
    private EngineSequence ReuseKept(EngineSequence arrived)
    {
        var request = arrived.Request.Request;
        if ((request.ContinueSequence ?? request.ForkSequence) is not { } id || !_kept.TryGetValue(id, out var kept)
            || kept.Tenant != request.TenantId || kept.Tokens.Count > request.PromptIds.Count
            || !kept.Tokens.SequenceEqual(request.PromptIds.Take(kept.Tokens.Count)))
            return arrived;
        long sequenceId = id;
        if (request.ForkSequence is not null)
        {
            sequenceId = Interlocked.Increment(ref _nextSequenceId);
            _pool.Allocator.Fork(id, sequenceId);
            _kept[id] = kept with { LastUsed = Interlocked.Increment(ref _arrival) };
        }
        else _kept.Remove(id);
        int computed = Math.Min(kept.Computed, request.PromptIds.Count - 1);
        return new EngineSequence(sequenceId, 0, arrived.Request, request.PromptIds, arrived.Arrival) { Computed = computed, CachedPromptTokens = computed };
    }

    /// <summary>Under memory pressure the least recently used kept conversation goes first (before any running sequence).</summary>
    private bool ReleaseOldestKept()
    {
        if (_kept.Count == 0) return false;
        var oldest = _kept.MinBy(k => k.Value.LastUsed).Key;
        _kept.Remove(oldest);
        _pool.Allocator.Free(oldest);
        return true;
    }

    private void Step(StepPlan plan)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var copy in plan.Copies) _pool.CopyBlock(copy.Source, copy.Destination);
        var parts = new List<PagedSequence>();
        var ids = new List<long>();
        var sampled = new List<(EngineSequence Sequence, long Row)>();
        var scored = new List<(EngineSequence Sequence, long Row, int Position)>(); // the row at position p predicts token p + 1
        foreach (var (sequence, start, count) in plan.Work)
        {
            parts.Add(new PagedSequence(sequence.Id, ids.Count, count, start));
            if (sequence.PromptLogprobs is not null)
                for (int p = start; p < Math.Min(start + count, sequence.Tokens.Count - 1); p++) scored.Add((sequence, ids.Count + p - start, p));
            ids.AddRange(sequence.Tokens.Skip(start).Take(count).Select(t => (long)t));
            if (start + count == sequence.Tokens.Count && sequence.PromptLogprobs is null) sampled.Add((sequence, ids.Count - 1));
        }
        long promptTokens = plan.Work.Sum(w => Math.Max(0, Math.Min(w.Count, w.Sequence.PromptLength - w.Start)));
        Interlocked.Add(ref _promptTokens, promptTokens);
        _metrics.PromptTokens(promptTokens);
        using var batch = new PagedBatch(_pool, parts);
        var rows = sampled.Select(s => s.Row).Concat(scored.Select(s => s.Row)).ToArray();
        var logits = _model.forwardPaged(torch.tensor(ids.ToArray(), device: _model.Device), batch, _pool, rows).to(ScalarType.Float32);
        foreach (var (sequence, start, count) in plan.Work)
        {
            sequence.Computed = start + count;
            _pool.Allocator.MarkComputed(sequence.Id, sequence.Computed);
        }
        if (scored.Count > 0) RecordPromptLogprobs(logits.narrow(0, sampled.Count, scored.Count), scored);
        foreach (var (sequence, _, _) in plan.Work)
            if (sequence.PromptLogprobs is not null && sequence.Computed == sequence.Tokens.Count)
            {
                sequence.Finished = true;
                _scheduler.Remove(sequence);
                _sequences.Remove(sequence.Request);
                sequence.Request.Score!.TrySetResult(sequence.PromptLogprobs);
            }
        for (int i = 0; i < sampled.Count; i++)
        {
            var row = logits.narrow(0, i, 1);
            var sequence = sampled[i].Sequence;
            if (sequence.Finished || sequence.Request.Beam is not null) continue;
            foreach (var member in ForkIfFirstToken(sequence)) Sample(member, row);
        }
        foreach (var beams in sampled.Select((s, i) => (s.Sequence, Row: i)).Where(s => s.Sequence.Request.Beam is not null)
                     .GroupBy(s => s.Sequence.Request))
            BeamStep(beams.Key, logits.index_select(0, torch.tensor(beams.Select(b => (long)b.Row).ToArray())), beams.Select(b => b.Sequence).ToList());
    }

    /// <summary>
    /// One step of HF's beam search for a request: its beams' logits (in beam order; at the first step the prompt's
    /// single row, copied to every beam) are ranked by the scorer; surviving beams continue, a beam chosen twice is
    /// forked (its KV shared copy-on-write), dropped beams free their blocks at once.
    /// </summary>
    private void BeamStep(EngineRequestState request, Tensor rows, List<EngineSequence> computed)
    {
        var config = request.Request.Config;
        int beams = config.NumBeams;
        if (request.Beams.Count == 0)
        {
            // The prompt is prefilled once; the other beams fork from it.
            var first = computed[0];
            request.Beams = [first, .. Enumerable.Range(1, beams - 1).Select(index => ForkRunning(first, index))];
            _sequences[request] = request.Beams.ToList();
            request.BeamScores = Enumerable.Range(0, beams).Select(i => i == 0 ? 0.0 : -1e9).ToArray();
            rows = rows.expand(beams, rows.shape[1]);
        }
        else
        {
            // Rows arrive in the step's plan order; the scorer needs them in beam order.
            var order = request.Beams.Select(b => (long)computed.IndexOf(b)).ToArray();
            if (order.Any(i => i < 0)) throw new InvalidOperationException("a beam was not computed with its siblings");
            rows = rows.index_select(0, torch.tensor(order, device: rows.device));
        }
        var live = request.Beams;
        var processed = live[0].Processors.Process(live.Select(b => (IReadOnlyList<int>)b.Tokens).ToList(), rows.log_softmax(-1));
        var withScores = processed + torch.tensor(request.BeamScores, device: processed.device).to(ScalarType.Float32).unsqueeze(1);
        var candidates = BeamSearchScorer.TopCandidates(withScores, prompts: 1, beams, keep: Math.Max(2, 1 + request.Eos.Count) * beams);
        var generated = live.Select(b => (IReadOnlyList<int>)b.Tokens.Skip(b.PromptLength).ToList()).ToList();
        int pad = config.ResolvePad(_model.Config, _tokenizer.EndOfTextId);
        var next = request.Beam!.Process(generated, candidates, request.Eos.ToArray(), pad, request.BeamSteps + 1);
        request.BeamSteps++;

        // Fork every reuse before any beam appends its token, so each copy starts from the same tokens.
        var used = new HashSet<int>();
        var successors = next.Select(n => used.Add(n.SourceRow) ? live[n.SourceRow] : ForkRunning(live[n.SourceRow], live[n.SourceRow].Index)).ToList();
        for (int j = 0; j < beams; j++) successors[j].Tokens.Add(next[j].Token);
        foreach (var dropped in live.Where((_, i) => !used.Contains(i))) { dropped.Finished = true; _scheduler.Remove(dropped); }
        request.Beams = successors;
        request.BeamScores = next.Select(n => n.Score).ToArray();
        _sequences[request] = successors.ToList();

        if (request.Beam.IsDone || request.BeamSteps >= request.MaxNewTokens) FinishBeams(request);
    }

    /// <summary>A running copy of <paramref name="source"/> that shares its KV blocks copy-on-write.</summary>
    private EngineSequence ForkRunning(EngineSequence source, int index)
    {
        var copy = source.Fork(Interlocked.Increment(ref _nextSequenceId), index);
        _pool.Allocator.Fork(source.Id, copy.Id);
        _scheduler.AddRunning(copy);
        return copy;
    }

    /// <summary>Picks the best hypotheses (HF's finalize) and streams each as a returned sequence; the beams' blocks are freed.</summary>
    private void FinishBeams(EngineRequestState request)
    {
        var generated = request.Beams.Select(b => (IReadOnlyList<int>)b.Tokens.Skip(b.PromptLength).ToList()).ToList();
        var best = request.Beam!.Finalize(generated, request.BeamScores, request.Request.Config.NumReturnSequences,
            request.Eos.Count > 0 ? request.Eos[0] : _tokenizer.EndOfTextId);
        int prompt = request.Beams[0].PromptLength;
        foreach (var beam in request.Beams) { beam.Finished = true; _scheduler.Remove(beam); }
        _sequences.Remove(request);
        for (int k = 0; k < best.Count; k++)
        {
            var detokenizer = _tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);
            var tokens = best[k].Tokens;
            for (int t = 0; t < tokens.Count; t++)
            {
                bool last = t == tokens.Count - 1;
                string delta = detokenizer.Push(tokens[t]) + (last ? detokenizer.Flush() : "");
                request.Events.Writer.TryWrite(new TokenEvent(k, tokens[t], delta, null,
                    last ? (best[k].EndedWithEos ? FinishReason.EndOfSequence : FinishReason.Length) : null,
                    last ? new Usage(prompt, tokens.Count, request.Beams[0].CachedPromptTokens) : null, Score: last ? best[k].Score : null));
            }
        }
        request.Events.Writer.TryComplete();
    }

    /// <summary>Scoring sequences: the log-probability of each next prompt token.</summary>
    private void RecordPromptLogprobs(Tensor logits, List<(EngineSequence Sequence, long Row, int Position)> scored)
    {
        foreach (var group in scored.Select((s, i) => (s, i)).GroupBy(x => x.s.Sequence))
        {
            var sequence = group.Key;
            var indices = group.Select(x => (long)x.i).ToArray();
            var next = group.Select(x => sequence.Tokens[x.s.Position + 1]).ToArray();
            using var rows = logits.index_select(0, torch.tensor(indices, device: logits.device));
            var values = LogprobCalculator.Compute(rows, next, sequence.Request.ScoreTopLogprobs);
            int k = 0;
            foreach (var (s, _) in group) sequence.PromptLogprobs![s.Position + 1] = values[k++];
        }
    }

    /// <summary>n &gt; 1: at the first token the prompt's KV is computed once, and the other sequences fork from it.</summary>
    private IEnumerable<EngineSequence> ForkIfFirstToken(EngineSequence sequence)
    {
        var request = sequence.Request;
        var members = _sequences[request];
        if (sequence.Generated > 0 || members.Count > 1 || request.Request.Config.NumReturnSequences == 1) return [sequence];
        for (int index = 1; index < request.Request.Config.NumReturnSequences; index++) members.Add(ForkRunning(sequence, index));
        return members.ToList();
    }

    private void Sample(EngineSequence sequence, Tensor logits)
    {
        var request = sequence.Request;
        var config = request.Request.Config;
        var scores = sequence.Processors.Process([sequence.Tokens], logits.clone());
        int token;
        if (sequence.Sampler is null) token = (int)scores.argmax(-1).item<long>();
        else
        {
            var probs = sequence.Processors.Warp([sequence.Tokens], scores).softmax(-1).cpu().data<float>().ToArray();
            token = sequence.Sampler.Sample(probs);
        }
        var logprob = config.Logprobs is { } top ? LogprobCalculator.Compute(logits, [token], top)[0] : null;
        sequence.Tokens.Add(token);
        Interlocked.Increment(ref _generatedTokens);
        _metrics.GeneratedToken();

        string delta = sequence.Detokenizer.Push(token);
        FinishReason? finish = request.Eos.Contains(token) ? FinishReason.EndOfSequence
            : sequence.Stops.Append(delta) ? FinishReason.StopString
            : sequence.Generated >= request.MaxNewTokens || sequence.Tokens.Count >= _model.Config.NPositions ? FinishReason.Length
            : null;
        if (finish is not null) delta += sequence.Detokenizer.Flush();

        var now = DateTime.UtcNow;
        if (!request.FirstTokenSent) { request.FirstTokenSent = true; _metrics.TimeToFirstToken(now - request.SubmittedAt); }
        if (sequence.LastTokenAt is { } last) _metrics.InterTokenLatency(now - last);
        sequence.LastTokenAt = now;

        var usage = finish is null ? null : new Usage(sequence.PromptLength, sequence.Generated, sequence.CachedPromptTokens);
        bool keep = finish is not null && request.Request.KeepSequence;
        request.Events.Writer.TryWrite(new TokenEvent(sequence.Index, token, delta, logprob, finish, usage, keep ? sequence.Id : null));
        if (finish is null) return;
        sequence.Finished = true;
        if (keep)
        {
            _scheduler.Detach(sequence);
            _kept[sequence.Id] = new KeptSequence(request.Request.TenantId, sequence.Tokens.ToArray(), sequence.Computed, Interlocked.Increment(ref _arrival));
            request.KeptSequence = sequence.Id;
        }
        else _scheduler.Remove(sequence);
        if (--request.OpenSequences == 0)
        {
            _sequences.Remove(request);
            request.Events.Writer.TryComplete();
        }
    }

    /// <summary>Ends a request early (cancelled or failed): all its sequences leave and their blocks are freed.</summary>
    private void Finish(EngineRequestState request, Exception error)
    {
        if (_sequences.Remove(request, out var members))
            foreach (var sequence in members) { sequence.Finished = true; _scheduler.Remove(sequence); }
        request.Events.Writer.TryComplete(error);
        if (error is OperationCanceledException) request.Score?.TrySetCanceled();
        else request.Score?.TrySetException(error);
    }

    private EngineStats Snapshot()
    {
        var allocator = _pool.Allocator;
        return new EngineStats(_kept.Count, _scheduler.RunningCount, _scheduler.WaitingCount + Math.Max(0, _queued), allocator.UsedBlocks, allocator.FreeBlocks,
            allocator.CachedFreeBlocks, allocator.TotalBlocks, _scheduler.Preemptions, Interlocked.Read(ref _rejections),
            Interlocked.Read(ref _promptTokens), Interlocked.Read(ref _generatedTokens), allocator.PrefixQueries, allocator.PrefixHits,
            _scheduler.Running.Sum(s => (long)allocator.TokenCount(s.Id)) + _kept.Values.Sum(k => (long)k.Tokens.Count), allocator.BlockSize,
            DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Release();
        _loop.Join(TimeSpan.FromSeconds(30));
        foreach (var request in _sequences.Keys.ToList()) Finish(request, new ObjectDisposedException(nameof(GenerationEngine)));
        while (_arrivals.TryDequeue(out var sequence)) sequence.Request.Events.Writer.TryComplete(new ObjectDisposedException(nameof(GenerationEngine)));
        while (_loopWork.TryDequeue(out var work)) work(); // the loop has stopped: finish what callers await
        _pool.Dispose();
        _metrics.Dispose();
        _wake.Dispose();
    }
}
