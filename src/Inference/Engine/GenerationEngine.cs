using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Constraints;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// One model as a shared service, and the only generation path (the CLI, the grains and the tests all use it).
/// A dedicated loop runs vLLM v1's engine-core step: requests arrive between steps; the <see cref="Scheduler"/>
/// plans the step; the <see cref="ModelRunner"/> runs it as one flat paged batch; the <see cref="Sampler"/> picks
/// every sequence's token (beam searches step their <see cref="BeamSearch"/> instead); the scheduler checks eos and
/// lengths; the <see cref="OutputProcessor"/> detokenizes, cuts stop strings and streams events. KV blocks belong to
/// the <see cref="KvCacheManager"/>. Only the loop thread touches tensors.
/// </summary>
public sealed class GenerationEngine : IDisposable
{
    private readonly Gpt2LMHeadModel _model;
    private readonly Gpt2Tokenizer _tokenizer;
    private readonly EngineOptions _options;
    private readonly ILogger _logger;
    private readonly KvBlockPool _pool;
    private readonly KvCacheManager _kv;
    private readonly Scheduler _scheduler;
    private readonly ModelRunner _runner;
    private readonly EngineMetrics _metrics;
    private readonly ConcurrentQueue<EngineRequestState> _cancellations = new();
    private readonly ConcurrentQueue<Action> _loopWork = new(); // work that must touch the pool's tensors or the KV manager, run by the loop
    private readonly EngineLoop<EngineSequence> _loop;
    private readonly HashSet<EngineRequestState> _active = [];
    private volatile EngineStats _stats;
    private long _arrival;
    private long _rejections, _promptTokens, _generatedTokens, _lastPreemptionWarning;
    private EngineStepTimes _times = EngineStepTimes.Zero;

    public GenerationEngine(Gpt2LMHeadModel model, Gpt2Tokenizer tokenizer, EngineOptions? options = null, ILogger? logger = null)
    {
        _options = options ?? new EngineOptions();
        _options.Validate();
        _model = model;
        _tokenizer = tokenizer;
        _logger = logger ?? NullLogger.Instance;
        var kvDType = _options.KvDType ?? model.DType;
        int blocks = _options.KvBlocks ?? KvBlockPool.BlocksForBytes(model.Config, _options.KvCacheBytes, _options.BlockSize, kvDType);
        if (blocks <= 0) throw new ArgumentException($"{nameof(EngineOptions.KvCacheBytes)}: {_options.KvCacheBytes} bytes do not hold one KV block");
        _pool = new KvBlockPool(model.Config, blocks, _options.BlockSize, kvDType, model.Device);
        _kv = new KvCacheManager(blocks, _options.BlockSize, _options.ModelName);
        _scheduler = new Scheduler(_options, _kv, model.Config.NPositions);
        _runner = new ModelRunner(model, _pool, _kv.Allocator, new KernelPolicy(_options.BatchInvariant, _options.MatVecKernel), _options.Threads);
        _loop = new EngineLoop<EngineSequence>($"engine {_options.ModelName}", Turn, _options.MaxWaitingRequests, () => _scheduler.WaitingCount);
        _stats = Snapshot();
        _metrics = new EngineMetrics(_options.ModelName, () => _stats);
        _loop.Start();
    }

    public EngineStats Stats => _stats;
    public long KvBytesPerToken => _pool.BytesPerToken;
    public TorchSharp.torch.ScalarType KvDType => _pool.DType;
    public Gpt2Config ModelConfig => _model.Config;

    /// <summary>
    /// Queues a request and streams its tokens. Bad parameters throw <see cref="ArgumentException"/> and a full queue
    /// <see cref="EngineOverloadedException"/> here, before anything is queued. Cancelling (or abandoning the stream)
    /// frees the request's KV at once.
    /// </summary>
    public IAsyncEnumerable<TokenEvent> SubmitAsync(EngineRequest request, CancellationToken cancellationToken = default)
    {
        var state = Prepare(request, scoreTopLogprobs: null);
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
        var state = Prepare(new EngineRequest(tenantId, tokens, new GenerationConfig { MaxNewTokens = 0 }), topLogprobs);
        Enqueue(state);
        var registration = cancellationToken.Register(() => Cancel(state));
        state.Score!.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        return state.Score.Task;
    }

    /// <summary>Drops the KV <paramref name="owner"/>'s conversation kept (its full blocks stay in the prefix cache until memory is needed).</summary>
    public void Release(string owner)
    {
        if (!_loop.Stopping) Post(() => _kv.Release(owner));
    }

    /// <summary>
    /// The KV and tokens of <paramref name="owner"/>'s kept conversation copied out (to spill it to disk), or null when
    /// nothing is kept (any more). It stays kept; release it after.
    /// </summary>
    public Task<KvSnapshot?> ExportKeptAsync(string owner) => OnLoop(() => _kv.Export(owner, _pool));

    /// <summary>Every kept conversation's KV and tokens copied out, by owner (to spill them all when the silo stops); they stay kept.</summary>
    public Task<IReadOnlyList<(string Owner, KvSnapshot Snapshot)>> ExportAllKeptAsync() => OnLoop(() => _kv.ExportAll(_pool));

    /// <summary>
    /// Keeps a snapshot's conversation under <paramref name="owner"/> (blocks the prefix cache already holds are
    /// shared, the rest written from the snapshot), so its next turn continues it without recomputing. False when
    /// the pool has no room for it now.
    /// </summary>
    public Task<bool> ImportKeptAsync(string owner, string tenantId, KvSnapshot snapshot)
    {
        if (snapshot.Tokens.Length == 0 || snapshot.Computed > snapshot.Tokens.Length || snapshot.Tokens.Length > _model.Config.NPositions)
            throw new ArgumentException("the KV snapshot's tokens do not fit this model", nameof(snapshot));
        return OnLoop(() => _kv.Import(owner, tenantId, snapshot, _scheduler.NewSequenceId(), _pool));
    }

    private EngineRequestState Prepare(EngineRequest request, int? scoreTopLogprobs)
    {
        ObjectDisposedException.ThrowIf(_loop.Stopping, this);
        var config = request.Config;
        config.Validate(_model.Config.VocabSize);
        if (string.IsNullOrEmpty(request.TenantId)) throw new ArgumentException("tenant: a request needs a tenant id", "tenant");
        if (config.IsBeamSearch && config.StopStrings is { Count: > 0 })
            throw new ArgumentException("stop_strings: not supported with beam search (use eos_token_id or bad_words_ids)", "stop_strings");
        if (request.Owner is not null && (config.IsBeamSearch || config.NumReturnSequences > 1))
            throw new ArgumentException("num_return_sequences: only a single sampled or greedy sequence can be kept for a conversation's next turn", "num_return_sequences");
        if (request.ForkFrom is not null && request.Owner is null)
            throw new ArgumentException("fork: a request forks another conversation's KV for an owner of its own", "fork");
        var prompt = request.PromptIds;
        foreach (var id in prompt)
            if (id < 0 || id >= _model.Config.VocabSize)
                throw new ArgumentOutOfRangeException("prompt", $"token id {id} is outside the vocabulary (0..{_model.Config.VocabSize - 1})");
        if (prompt.Count == 0) throw new ArgumentException("prompt: at least one token is needed", "prompt");
        int limit = _model.Config.NPositions;
        int maxNew = config.MaxNewTokensFor(prompt.Count, limit);
        if (config.MaxNewTokens is null && maxNew == 0 && prompt.Count >= limit)
            throw new ArgumentException($"prompt: the prompt ({prompt.Count} tokens) fills the model's context of {limit} positions, leaving no room for a reply", "prompt");
        if (prompt.Count + maxNew > limit && config.TruncatePrompt && maxNew < limit) prompt = prompt.Skip(prompt.Count + maxNew - limit).ToArray();
        if (prompt.Count + maxNew > limit)
            throw new ArgumentException($"max_new_tokens: the prompt ({prompt.Count} tokens) plus {maxNew} new tokens exceeds the model's context of {limit} positions" +
                (config.TruncatePrompt ? "" : "; lower max_new_tokens or ask for prompt truncation"), "max_new_tokens");
        int blocksNeeded = _kv.Allocator.BlocksFor(prompt.Count + maxNew);
        if (blocksNeeded > _kv.Allocator.TotalBlocks)
            throw new ArgumentException($"max_new_tokens: {prompt.Count + maxNew} tokens need {blocksNeeded} KV blocks; this engine's pool holds {_kv.Allocator.TotalBlocks}", "max_new_tokens");
        // A vocabulary padded past the tokenizer's (for speed, as nanoGPT pads 50257 to 50304) has ids with no text:
        // they are never generated, so every token of an answer decodes.
        if (_tokenizer.VocabSize < _model.Config.VocabSize)
            config = config with { SuppressTokens = [.. config.SuppressTokens ?? [], .. Enumerable.Range(_tokenizer.VocabSize, _model.Config.VocabSize - _tokenizer.VocabSize)] };
        var eos = config.ResolveEos(_model.Config);
        int pad = config.ResolvePad(_model.Config, _tokenizer.EndOfTextId);
        if (config.Constraint is { } constraint && eos.Count == 0)
            throw new ArgumentException($"{constraint.Parameter}: a constrained output ends with an eos token, and this request has none", constraint.Parameter);
        return new EngineRequestState(request with { PromptIds = prompt, Config = config }, eos, pad, maxNew, _tokenizer)
        {
            Beams = config.IsBeamSearch && scoreTopLogprobs is null ? new BeamSearch(config, eos, pad, maxNew) : null,
            Grammar = config.Constraint is { } c ? GrammarAutomaton.For(c.Compile(), _tokenizer) : null,
            Score = scoreTopLogprobs is null ? null : new TaskCompletionSource<IReadOnlyList<TokenLogprob?>>(TaskCreationOptions.RunContinuationsAsynchronously),
            ScoreTopLogprobs = scoreTopLogprobs ?? 0,
        };
    }

    private void Enqueue(EngineRequestState state)
    {
        // Waiting = not yet picked up by the loop + queued in the scheduler.
        _loop.Enqueue(new EngineSequence(_scheduler.NewSequenceId(), 0, state, state.Request.PromptIds, Interlocked.Increment(ref _arrival)), () =>
        {
            Interlocked.Increment(ref _rejections);
            _metrics.Rejected();
            return new EngineOverloadedException(RetryAfter(), $"the engine for {_options.ModelName} has {_options.MaxWaitingRequests} requests waiting; retry later");
        }, admitted: () => state.Span = EngineTracing.Start(_options.ModelName, state));
    }

    private async IAsyncEnumerable<TokenEvent> Read(EngineRequestState state, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var registration = cancellationToken.Register(() => Cancel(state));
        bool completed = false;
        try
        {
            await foreach (var item in state.Events.Reader.ReadAllAsync(cancellationToken))
            {
                // ReadAllAsync checks the token only when it has to wait: events already buffered would still stream.
                cancellationToken.ThrowIfCancellationRequested();
                yield return item;
            }
            completed = true;
        }
        finally
        {
            if (!completed) Cancel(state); // the consumer stopped reading: free the KV now
        }
    }

    private void Post(Action work)
    {
        ObjectDisposedException.ThrowIf(_loop.Stopping, this);
        _loopWork.Enqueue(work);
        _loop.Wake();
    }

    /// <summary>Runs <paramref name="work"/> on the loop thread (the only one that touches the pool and the KV manager).</summary>
    private Task<T> OnLoop<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            try { done.TrySetResult(work()); }
            catch (Exception e) { done.TrySetException(e); }
        });
        return done.Task;
    }

    private void Cancel(EngineRequestState state)
    {
        if (state.Cancelled) return;
        state.Cancelled = true;
        _cancellations.Enqueue(state);
        _loop.Wake();
    }

    private TimeSpan RetryAfter() =>
        TimeSpan.FromSeconds(Math.Clamp((_loop.Queued + _scheduler.WaitingCount) / (double)_options.MaxRunningSequences, 1, 60));

    /// <summary>One turn of the loop: take in arrivals, schedule, run the step; how long to wait before the next (null: none).</summary>
    private TimeSpan? Turn()
    {
        bool idle = !_loop.HasArrivals && _cancellations.IsEmpty && _loopWork.IsEmpty && _scheduler.RunningCount == 0 && _scheduler.WaitingCount == 0;
        if (idle) return TimeSpan.FromMilliseconds(200);
        Admit();
        long preemptionsBefore = _scheduler.Preemptions;
        long scheduling = System.Diagnostics.Stopwatch.GetTimestamp();
        var plan = _scheduler.Schedule();
        _times = _times with { Schedule = _times.Schedule + System.Diagnostics.Stopwatch.GetElapsedTime(scheduling).TotalSeconds };
        ReportPressure(_scheduler.Preemptions - preemptionsBefore);
        if (plan.IsEmpty) return TimeSpan.FromMilliseconds(5); // waiting for memory held by kept or cancelled sequences
        try { Step(plan); }
        catch (Exception e) when (!_loop.Stopping)
        {
            // A failed step fails the requests in it and leaves everyone else running.
            var failed = plan.Chunks.Select(c => c.Sequence.Request).Distinct().ToList();
            _logger.LogError(e, "Engine {Model}: a step of {Tokens} tokens failed; its {Requests} requests fail", _options.ModelName, plan.TokenCount, failed.Count);
            foreach (var request in failed) Fail(request, e);
        }
        _stats = Snapshot();
        return null;
    }

    /// <summary>Moves new requests into the scheduler (taking over their conversation's kept KV) and ends cancelled ones.</summary>
    private void Admit()
    {
        while (_loopWork.TryDequeue(out var work)) work();
        while (_loop.TryTake(out var arrived))
        {
            var request = arrived.Request;
            if (request.Cancelled)
            {
                Close(request, new OperationCanceledException("the request was cancelled"), signalReader: false);
                request.Score?.TrySetCanceled();
                continue;
            }
            request.AdmittedAt = DateTime.UtcNow;
            var sequence = WithKeptKv(arrived);
            request.Members.Add(sequence);
            _active.Add(request);
            _scheduler.Enqueue(sequence);
        }
        while (_cancellations.TryDequeue(out var request))
            if (_active.Contains(request)) Fail(request, new OperationCanceledException("the request was cancelled"));
        _stats = Snapshot();
    }

    /// <summary>
    /// A conversation's turn continues its owner's kept KV (or forks another owner's) when that KV's tokens start its
    /// prompt: only the rest is prefilled. Otherwise the turn starts afresh (the prefix cache may still hit).
    /// </summary>
    private EngineSequence WithKeptKv(EngineSequence arrived)
    {
        var request = arrived.Request.Request;
        if (request.Owner is not { } owner) return arrived;
        if (_kv.Continue(owner, request.TenantId, request.PromptIds) is { } kept)
            return new EngineSequence(kept.Sequence, 0, arrived.Request, request.PromptIds, arrived.Arrival) { Computed = kept.Computed, CachedPromptTokens = kept.Computed };
        if (request.ForkFrom is { } source && _kv.ForkFrom(source, request.TenantId, request.PromptIds, arrived.Id) is { } computed)
            return new EngineSequence(arrived.Id, 0, arrived.Request, request.PromptIds, arrived.Arrival) { Computed = computed, CachedPromptTokens = computed };
        return arrived;
    }

    private void ReportPressure(long preemptions)
    {
        if (preemptions > 0)
        {
            _metrics.Preempted(preemptions);
            // A storm: several sequences at once, at most one warning a minute.
            long now = Environment.TickCount64;
            if (preemptions >= 4 && now - _lastPreemptionWarning > 60_000)
            {
                _lastPreemptionWarning = now;
                _logger.LogWarning("Engine {Model}: {Count} sequences preempted in one step for KV memory ({Free} of {Total} blocks free); consider a larger KV cache",
                    _options.ModelName, preemptions, _kv.Allocator.FreeBlocks, _kv.Allocator.TotalBlocks);
            }
        }
        foreach (var owner in _kv.TakeEvicted())
            _logger.LogInformation("Engine {Model}: the kept KV of conversation {Owner} was evicted for running work; its next turn recomputes it", _options.ModelName, owner);
    }

    private void Step(SchedulerOutput plan)
    {
        using var scope = torch.NewDisposeScope();
        var output = _runner.Execute(plan);
        long sampling = System.Diagnostics.Stopwatch.GetTimestamp();
        long promptTokens = plan.Chunks.Sum(c => Math.Max(0, Math.Min(c.Count, c.Sequence.PromptLength - c.Start)));
        Interlocked.Add(ref _promptTokens, promptTokens);
        _metrics.PromptTokens(promptTokens);
        if (output.Scored.Count > 0) RecordPromptLogprobs(output.Logits.narrow(0, output.Sampled.Count, output.Scored.Count), output.Scored);

        var rows = new List<(EngineSequence, int)>();
        var beamRows = new Dictionary<EngineSequence, int>();
        for (int i = 0; i < output.Sampled.Count; i++)
            foreach (var sequence in output.Sampled[i].Samplers)
                if (sequence.IsBeam) beamRows[sequence] = i;
                else rows.Add((sequence, i));
        var sampled = Sampler.Sample(output.Logits, rows);
        double sampleSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(sampling).TotalSeconds;
        long outputting = System.Diagnostics.Stopwatch.GetTimestamp();
        var checkedTokens = _scheduler.UpdateFromOutput(plan, sampled);

        foreach (var chunk in plan.Chunks)
            if (chunk.Sequence is { PromptLogprobs: { } logprobs } scoring && scoring.Computed == scoring.Tokens.Count)
            {
                _scheduler.Finish(scoring);
                _active.Remove(scoring.Request);
                EngineTracing.End(scoring.Request);
                scoring.Request.Score!.TrySetResult(logprobs);
            }
        foreach (var token in checkedTokens) Emit(token);
        double outputSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(outputting).TotalSeconds;
        long beamSearch = System.Diagnostics.Stopwatch.GetTimestamp();
        StepBeams(output.Logits, beamRows);
        sampleSeconds += System.Diagnostics.Stopwatch.GetElapsedTime(beamSearch).TotalSeconds;
        _times = _times with
        {
            Steps = _times.Steps + 1, Inputs = _times.Inputs + output.InputSeconds, Forward = _times.Forward + output.ForwardSeconds,
            Sample = _times.Sample + sampleSeconds, Output = _times.Output + outputSeconds,
        };
    }

    /// <summary>
    /// Every beam request's step, group by group: each group of every request comes to the host in one copy (so a step
    /// costs one copy per beam group, not per request), then the scheduler forks and frees the beams.
    /// </summary>
    private void StepBeams(Tensor logits, Dictionary<EngineSequence, int> beamRows)
    {
        var requests = beamRows.Keys.Select(b => b.Request).Distinct().Select(r => (Request: r, Beams: r.Members.ToList())).ToList();
        foreach (var (request, beams) in requests)
            request.Beams!.BeginStep(logits.index_select(0, torch.tensor(beams.Select(b => (long)beamRows[b]).ToArray(), device: logits.device)), beams);
        for (int group = 0; ; group++)
        {
            var searches = requests.Select(r => r.Request.Beams!).Where(b => group < b.Groups).ToList();
            if (searches.Count == 0) break;
            var host = HostCopy.Float64([.. searches.SelectMany(b => b.GroupTensors(group))]);
            int offset = 0;
            foreach (var search in searches) offset = search.CompleteGroup(group, host, offset);
        }
        foreach (var (request, beams) in requests)
        {
            _scheduler.ReplaceBeams(request, request.Beams!.EndStep());
            if (request.Beams.IsDone) FinishBeams(request, beams[0].PromptLength, beams[0].CachedPromptTokens);
        }
    }

    /// <summary>Streams a sampled token; a sequence it ends is kept for its conversation's next turn, or freed.</summary>
    private void Emit(CheckedToken token)
    {
        var sequence = token.Sequence;
        var request = sequence.Request;
        var e = OutputProcessor.ToEvent(token);
        Interlocked.Increment(ref _generatedTokens);
        _metrics.GeneratedToken();
        var now = DateTime.UtcNow;
        request.GeneratedTokens++;
        if (!request.FirstTokenSent) { request.FirstTokenAt = now; _metrics.TimeToFirstToken(now - request.SubmittedAt); }
        if (sequence.LastTokenAt is { } last) _metrics.InterTokenLatency(now - last);
        sequence.LastTokenAt = now;
        request.Events.Writer.TryWrite(e);
        if (e.Finish is null) return;
        _scheduler.Finish(sequence, keepFor: request.Request.Owner);
        if (--request.OpenSequences > 0) return;
        _active.Remove(request);
        Close(request);
    }

    /// <summary>Picks the best hypotheses (HF's finalize) and streams each as a returned sequence; the beams' blocks are freed.</summary>
    private void FinishBeams(EngineRequestState request, int promptLength, int cachedPromptTokens)
    {
        var best = request.Beams!.Finalize(request.Members);
        foreach (var beam in request.Members.ToList()) _scheduler.Finish(beam);
        _active.Remove(request);
        foreach (var e in OutputProcessor.BeamResults(request, best, promptLength, cachedPromptTokens))
        {
            Interlocked.Increment(ref _generatedTokens);
            _metrics.GeneratedToken();
            request.GeneratedTokens++;
            request.FirstTokenAt ??= DateTime.UtcNow;
            request.Events.Writer.TryWrite(e);
        }
        Close(request);
    }

    /// <summary>Ends a request's stream (with <paramref name="error"/> when it failed) and its trace span.</summary>
    private static void Close(EngineRequestState request, Exception? error = null, bool signalReader = true)
    {
        EngineTracing.End(request, error);
        request.Events.Writer.TryComplete(signalReader ? error : null);
    }

    /// <summary>Scoring sequences: the log-probability of each next prompt token, every scored row of the step in one call (one host copy).</summary>
    private static void RecordPromptLogprobs(Tensor logits, IReadOnlyList<(EngineSequence Sequence, int Position)> scored)
    {
        var next = scored.Select(s => s.Sequence.Tokens[s.Position + 1]).ToArray();
        var tops = scored.Select(s => s.Sequence.Request.ScoreTopLogprobs).ToArray();
        var values = LogprobCalculator.Compute(logits, next, tops.Max(), tops);
        for (int i = 0; i < scored.Count; i++) scored[i].Sequence.PromptLogprobs![scored[i].Position + 1] = values[i];
    }

    /// <summary>Ends a request early (cancelled or failed): all its sequences leave and their blocks are freed.</summary>
    private void Fail(EngineRequestState request, Exception error)
    {
        foreach (var sequence in request.Members.ToList()) _scheduler.Finish(sequence);
        _active.Remove(request);
        Close(request, error);
        if (error is OperationCanceledException) request.Score?.TrySetCanceled();
        else request.Score?.TrySetException(error);
    }

    private EngineStats Snapshot()
    {
        var allocator = _kv.Allocator;
        return new EngineStats(_kv.KeptCount, _scheduler.RunningCount, _scheduler.WaitingCount + _loop.Queued, allocator.UsedBlocks, allocator.FreeBlocks,
            allocator.CachedFreeBlocks, allocator.TotalBlocks, _scheduler.Preemptions, Interlocked.Read(ref _rejections),
            Interlocked.Read(ref _promptTokens), Interlocked.Read(ref _generatedTokens), allocator.PrefixQueries, allocator.PrefixHits,
            _scheduler.Running.Sum(s => (long)allocator.TokenCount(s.Id)) + _kv.KeptTokens, allocator.BlockSize,
            DisposeScopeManager.Statistics.ThreadTotalLiveCount, _times);
    }

    public void Dispose()
    {
        if (_loop.Stopping) return;
        _loop.Stop();
        foreach (var request in _active.ToList()) Fail(request, new ObjectDisposedException(nameof(GenerationEngine)));
        while (_loop.TryTake(out var sequence)) Close(sequence.Request, new ObjectDisposedException(nameof(GenerationEngine)));
        while (_loopWork.TryDequeue(out var work)) work(); // the loop has stopped: finish what callers await
        _pool.Dispose();
        _metrics.Dispose();
        _loop.Dispose();
    }
}
