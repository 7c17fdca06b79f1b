using System.Collections.Concurrent;
using Gpt2Orleans.Inference.Classification;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// A classification head (sequence or token) as a shared service: concurrent requests are gathered into one
/// right-padded batch per step under a token budget, taken round-robin across tenants, and answered together.
/// Classification needs no KV cache (one prefill), so it is a loop of its own beside the generation engine.
/// </summary>
public sealed class ClassificationEngine : IDisposable
{
    private sealed record Pending(string Tenant, IReadOnlyList<int> Ids, TaskCompletionSource<object> Result, CancellationToken Cancellation)
    {
        /// <summary>When its batch began (its trace span's end of queueing).</summary>
        public DateTime? StartedAt { get; set; }
    }

    private readonly Gpt2PreTrainedModel _model;
    private readonly Gpt2Tokenizer _tokenizer;
    private readonly int _maxBatchTokens;
    private readonly int _maxWaiting;
    private readonly ConcurrentQueue<Pending> _arrivals = new();
    private readonly TenantQueues<Pending> _waiting = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _loop;
    private volatile bool _stopping;
    private int _queued;

    public long Batches { get; private set; }

    public ClassificationEngine(Gpt2PreTrainedModel model, Gpt2Tokenizer tokenizer, int maxBatchTokens = 4096, int maxWaitingRequests = 1024)
    {
        if (model is not (Gpt2ForSequenceClassification or Gpt2ForTokenClassification))
            throw new ArgumentException("model: a sequence- or token-classification model is needed", nameof(model));
        if (maxBatchTokens <= 0 || maxWaitingRequests <= 0) throw new ArgumentException("the batch budget and queue bound must be positive");
        _model = model;
        _tokenizer = tokenizer;
        _maxBatchTokens = maxBatchTokens;
        _maxWaiting = maxWaitingRequests;
        _loop = new Thread(Run) { IsBackground = true, Name = "classification engine" };
        _loop.Start();
    }

    public async Task<SequenceClassification> ClassifyAsync(string tenant, IReadOnlyList<int> ids, CancellationToken cancellationToken = default) =>
        _model is Gpt2ForSequenceClassification
            ? (SequenceClassification)await Enqueue(tenant, ids, cancellationToken)
            : throw new InvalidOperationException("this model has a token-classification head; use ClassifyTokensAsync");

    public async Task<IReadOnlyList<TokenClassification>> ClassifyTokensAsync(string tenant, IReadOnlyList<int> ids, CancellationToken cancellationToken = default) =>
        _model is Gpt2ForTokenClassification
            ? (IReadOnlyList<TokenClassification>)await Enqueue(tenant, ids, cancellationToken)
            : throw new InvalidOperationException("this model has a sequence-classification head; use ClassifyAsync");

    private Task<object> Enqueue(string tenant, IReadOnlyList<int> ids, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (string.IsNullOrEmpty(tenant)) throw new ArgumentException("tenant: a request needs a tenant id", "tenant");
        if (ids.Count == 0) throw new ArgumentException("text: at least one token is needed", "text");
        if (ids.Count > _model.Config.NPositions || ids.Count > _maxBatchTokens)
            throw new ArgumentException($"text: {ids.Count} tokens exceed the model's context of {Math.Min(_model.Config.NPositions, _maxBatchTokens)}", "text");
        foreach (var id in ids)
            if (id < 0 || id >= _model.Config.VocabSize)
                throw new ArgumentOutOfRangeException("text", $"token id {id} is outside the vocabulary (0..{_model.Config.VocabSize - 1})");
        if (Interlocked.Increment(ref _queued) > _maxWaiting)
        {
            Interlocked.Decrement(ref _queued);
            throw new EngineOverloadedException(TimeSpan.FromSeconds(1), $"{_maxWaiting} classification requests are waiting; retry later");
        }
        var pending = new Pending(tenant, ids, new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
        EngineTracing.TraceClassification(_model is Gpt2ForSequenceClassification ? "sequence" : "tokens", tenant, ids.Count, pending.Result.Task, () => pending.StartedAt);
        _arrivals.Enqueue(pending);
        _wake.Release();
        return pending.Result.Task;
    }

    private void Run()
    {
        while (!_stopping)
        {
            while (_arrivals.TryDequeue(out var arrived)) _waiting.Enqueue(arrived.Tenant, arrived);
            var batch = NextBatch();
            if (batch.Count == 0) { _wake.Wait(TimeSpan.FromMilliseconds(200)); continue; }
            Interlocked.Add(ref _queued, -batch.Count);
            try { Classify(batch); }
            catch (Exception e) when (!_stopping) { foreach (var p in batch) p.Result.TrySetException(e); }
        }
    }

    /// <summary>Round-robin across tenants, one request per turn, while the padded batch stays within the token budget.</summary>
    private List<Pending> NextBatch()
    {
        var batch = new List<Pending>();
        bool onePerBatch = _model.Config.PadTokenId is null && _model is Gpt2ForSequenceClassification; // HF cannot pool a padded batch without a pad id
        while (!(onePerBatch && batch.Count == 1) && _waiting.Peek() is var (tenant, next))
        {
            if (next.Cancellation.IsCancellationRequested) { _waiting.Dequeue(tenant); next.Result.TrySetCanceled(); Interlocked.Decrement(ref _queued); continue; }
            int width = Math.Max(batch.Count == 0 ? 0 : batch.Max(p => p.Ids.Count), next.Ids.Count);
            if (batch.Count > 0 && width * (batch.Count + 1) > _maxBatchTokens) break;
            batch.Add(_waiting.Dequeue(tenant));
        }
        return batch;
    }

    private void Classify(List<Pending> batch)
    {
        using var scope = torch.NewDisposeScope();
        var started = DateTime.UtcNow;
        foreach (var p in batch) p.StartedAt = started;
        var encoded = BatchEncoding.Pad(batch.Select(p => p.Ids).ToList(), _model.Config.PadTokenId ?? _tokenizer.EndOfTextId, PaddingSide.Right);
        Batches++;
        if (_model is Gpt2ForSequenceClassification sequence)
        {
            var results = TextClassifier.SequenceResults(sequence, encoded);
            for (int i = 0; i < batch.Count; i++) batch[i].Result.TrySetResult(results[i]);
        }
        else
        {
            var results = TextClassifier.TokenResults((Gpt2ForTokenClassification)_model, encoded, _tokenizer);
            for (int i = 0; i < batch.Count; i++) batch[i].Result.TrySetResult(results[i]);
        }
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Release();
        _loop.Join(TimeSpan.FromSeconds(30));
        foreach (var p in _waiting.All.Concat(_arrivals)) p.Result.TrySetException(new ObjectDisposedException(nameof(ClassificationEngine)));
        _wake.Dispose();
    }
}
