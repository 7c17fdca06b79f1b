using Gpt2Orleans.Inference.Classification;
using Gpt2Orleans.Inference.Embeddings;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// The one-pass requests as a shared service: a classification head's (sequence or token) and embeddings from any
/// model's transformer. Concurrent requests are gathered into right-padded batches per step under a token budget,
/// taken round-robin across tenants, and answered together. They need no KV cache (one prefill), so this is a loop
/// of its own beside the generation engine.
/// </summary>
public sealed class OnePassEngine : IDisposable
{
    /// <summary>What a request asks of its forward pass; requests of one kind share a batch.</summary>
    private enum Kind { Sequence, Tokens, MeanEmbedding, LastEmbedding, Span, Choice }

    private sealed record Pending(string Tenant, IReadOnlyList<int> Ids, Kind Kind, TaskCompletionSource<object> Result, CancellationToken Cancellation)
    {
        /// <summary>When its batch began (its trace span's end of queueing).</summary>
        public DateTime? StartedAt { get; set; }
    }

    private readonly Gpt2PreTrainedModel _model;
    private readonly Gpt2Tokenizer _tokenizer;
    private readonly int _maxBatchTokens;
    private readonly int _maxWaiting;
    private readonly TenantQueues<Pending> _waiting = new();
    private readonly EngineLoop<Pending> _loop;

    public long Batches { get; private set; }

    public OnePassEngine(Gpt2PreTrainedModel model, Gpt2Tokenizer tokenizer, int maxBatchTokens = 4096, int maxWaitingRequests = 1024)
    {
        if (maxBatchTokens <= 0 || maxWaitingRequests <= 0) throw new ArgumentException("the batch budget and queue bound must be positive");
        _model = model;
        _tokenizer = tokenizer;
        _maxBatchTokens = maxBatchTokens;
        _maxWaiting = maxWaitingRequests;
        _loop = new EngineLoop<Pending>("one-pass engine", Turn, maxWaitingRequests, () => _waiting.Count);
        _loop.Start();
    }

    public async Task<SequenceClassification> ClassifyAsync(string tenant, IReadOnlyList<int> ids, CancellationToken cancellationToken = default) =>
        _model is Gpt2ForSequenceClassification
            ? (SequenceClassification)await Enqueue(tenant, ids, Kind.Sequence, cancellationToken)
            : throw new InvalidOperationException("this model has no sequence-classification head");

    public async Task<IReadOnlyList<TokenClassification>> ClassifyTokensAsync(string tenant, IReadOnlyList<int> ids, CancellationToken cancellationToken = default) =>
        _model is Gpt2ForTokenClassification
            ? (IReadOnlyList<TokenClassification>)await Enqueue(tenant, ids, Kind.Tokens, cancellationToken)
            : throw new InvalidOperationException("this model has no token-classification head");

    /// <summary>The text's last hidden state pooled into one vector (<see cref="TextEmbedder"/>).</summary>
    public async Task<float[]> EmbedAsync(string tenant, IReadOnlyList<int> ids, EmbeddingPooling pooling, CancellationToken cancellationToken = default) =>
        (float[])await Enqueue(tenant, ids, pooling == EmbeddingPooling.Mean ? Kind.MeanEmbedding : Kind.LastEmbedding, cancellationToken);

    /// <summary>A question-answering head's start and end logits for every token of the input.</summary>
    public async Task<(float[] Start, float[] End)> SpanLogitsAsync(string tenant, IReadOnlyList<int> ids, CancellationToken cancellationToken = default) =>
        _model is Gpt2ForQuestionAnswering
            ? ((float[], float[]))await Enqueue(tenant, ids, Kind.Span, cancellationToken)
            : throw new InvalidOperationException("this model has no question-answering head");

    /// <summary>
    /// A double-heads model's multiple-choice logit for one choice (its hidden state at its last token, as HF's
    /// mc_token_ids name it): each choice is scored on its own, so a request's choices batch like any texts.
    /// </summary>
    public async Task<float> ChoiceLogitAsync(string tenant, IReadOnlyList<int> ids, CancellationToken cancellationToken = default) =>
        _model is Gpt2DoubleHeadsModel
            ? (float)await Enqueue(tenant, ids, Kind.Choice, cancellationToken)
            : throw new InvalidOperationException("this model has no multiple-choice head");

    private Task<object> Enqueue(string tenant, IReadOnlyList<int> ids, Kind kind, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_loop.Stopping, this);
        if (string.IsNullOrEmpty(tenant)) throw new ArgumentException("tenant: a request needs a tenant id", "tenant");
        if (ids.Count == 0) throw new ArgumentException("text: at least one token is needed", "text");
        if (ids.Count > _model.Config.NPositions || ids.Count > _maxBatchTokens)
            throw new ArgumentException($"text: {ids.Count} tokens exceed the model's context of {Math.Min(_model.Config.NPositions, _maxBatchTokens)}", "text");
        foreach (var id in ids)
            if (id < 0 || id >= _model.Config.VocabSize)
                throw new ArgumentOutOfRangeException("text", $"token id {id} is outside the vocabulary (0..{_model.Config.VocabSize - 1})");
        var pending = new Pending(tenant, ids, kind, new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
        _loop.Enqueue(pending, () => new EngineOverloadedException(TimeSpan.FromSeconds(1), $"{_maxWaiting} one-pass requests are waiting; retry later"),
            admitted: () => EngineTracing.TraceClassification(kind switch { Kind.Sequence => "sequence", Kind.Tokens => "tokens", _ => "embedding" },
                tenant, ids.Count, pending.Result.Task, () => pending.StartedAt));
        return pending.Result.Task;
    }

    /// <summary>One turn of the loop: take in arrivals, run the next batch; how long to wait before the next (null: none).</summary>
    private TimeSpan? Turn()
    {
        while (_loop.TryTake(out var arrived)) _waiting.Enqueue(arrived.Tenant, arrived);
        var batch = NextBatch();
        if (batch.Count == 0) return TimeSpan.FromMilliseconds(200);
        try { Classify(batch); }
        catch (Exception e) when (!_loop.Stopping) { foreach (var p in batch) p.Result.TrySetException(e); }
        return null;
    }

    /// <summary>
    /// Round-robin across tenants, one request per turn, while the padded batch stays within the token budget and its
    /// requests are of one kind (the next kind waits for the next step).
    /// </summary>
    private List<Pending> NextBatch()
    {
        var batch = new List<Pending>();
        while (_waiting.Peek() is var (tenant, next))
        {
            if (next.Cancellation.IsCancellationRequested) { _waiting.Dequeue(tenant); next.Result.TrySetCanceled(); continue; }
            if (batch.Count > 0 && (next.Kind != batch[0].Kind || OnePerBatch(next.Kind))) break;
            int width = Math.Max(batch.Count == 0 ? 0 : batch.Max(p => p.Ids.Count), next.Ids.Count);
            if (batch.Count > 0 && width * (batch.Count + 1) > _maxBatchTokens) break;
            batch.Add(_waiting.Dequeue(tenant));
        }
        return batch;
    }

    /// <summary>HF cannot pool a padded batch through the sequence head without a pad id, so such texts go one at a time.</summary>
    private bool OnePerBatch(Kind kind) => kind == Kind.Sequence && _model.Config.PadTokenId is null;

    private void Classify(List<Pending> batch)
    {
        using var scope = torch.NewDisposeScope();
        var started = DateTime.UtcNow;
        foreach (var p in batch) p.StartedAt = started;
        var encoded = BatchEncoding.Pad(batch.Select(p => p.Ids).ToList(), _model.Config.PadTokenId ?? _tokenizer.EndOfTextId, PaddingSide.Right);
        Batches++;
        IReadOnlyList<object> results = batch[0].Kind switch
        {
            Kind.Sequence => TextClassifier.SequenceResults((Gpt2ForSequenceClassification)_model, encoded),
            Kind.Tokens => TextClassifier.TokenResults((Gpt2ForTokenClassification)_model, encoded, _tokenizer),
            Kind.MeanEmbedding => TextEmbedder.Embed(_model.transformer, encoded, EmbeddingPooling.Mean),
            Kind.Span => SpanLogits((Gpt2ForQuestionAnswering)_model, encoded),
            Kind.Choice => ChoiceLogits((Gpt2DoubleHeadsModel)_model, encoded),
            _ => TextEmbedder.Embed(_model.transformer, encoded, EmbeddingPooling.Last),
        };
        for (int i = 0; i < batch.Count; i++) batch[i].Result.TrySetResult(results[i]);
    }

    private static IReadOnlyList<object> SpanLogits(Gpt2ForQuestionAnswering model, BatchEncoding batch)
    {
        using var output = model.forward(batch.InputIdsTensor(model.Device), batch.AttentionMaskTensor(model.Device));
        var start = output.StartLogits.to(ScalarType.Float32).cpu();
        var end = output.EndLogits.to(ScalarType.Float32).cpu();
        return Enumerable.Range(0, batch.BatchSize).Select(i =>
        {
            int length = batch.AttentionMask[i].Count(m => m == 1);
            return (object)(start[i].data<float>().Take(length).ToArray(), end[i].data<float>().Take(length).ToArray());
        }).ToList();
    }

    /// <summary>The batch as one example whose choices are its rows, each scored at its last real token.</summary>
    private static IReadOnlyList<object> ChoiceLogits(Gpt2DoubleHeadsModel model, BatchEncoding batch)
    {
        var last = batch.AttentionMask.Select(m => (long)m.Count(v => v == 1) - 1).ToArray();
        using var output = model.forward(batch.InputIdsTensor(model.Device).unsqueeze(0), torch.tensor(last, device: model.Device).unsqueeze(0),
            batch.AttentionMaskTensor(model.Device).unsqueeze(0));
        var logits = output.McLogits.to(ScalarType.Float32).cpu()[0].data<float>().ToArray();
        return logits.Select(l => (object)l).ToList();
    }

    public void Dispose()
    {
        if (_loop.Stopping) return;
        _loop.Stop();
        while (_loop.TryTake(out var arrived)) _waiting.Enqueue(arrived.Tenant, arrived);
        foreach (var p in _waiting.All) p.Result.TrySetException(new ObjectDisposedException(nameof(OnePassEngine)));
        _loop.Dispose();
    }
}
