using System.Runtime.CompilerServices;
using Gpt2Orleans.Grains.Placement;
using Gpt2Orleans.Inference.Engine;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// A model worker: fronts this silo's engine for one model. Reentrant, so many streams interleave; the engine's
/// own loop runs the forward passes, and the grain only awaits its tokens.
/// </summary>
[ModelWorkerPlacement, Reentrant]
public sealed class ModelGrain(ModelHost host, ILocalSiloDetails silo, ILogger<ModelGrain> logger) : Grain, IModelGrain
{
    private HostedModel _model = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var (model, siloKey) = GrainKeys.ParseModelWorker(this.GetPrimaryKeyString());
        if (siloKey != silo.SiloAddress.ToParsableString())
            throw new ModelUnavailableException(model, $"worker for silo {siloKey} activated on {silo.SiloAddress}");
        try { _model = await host.GetAsync(model); }
        catch (Exception e) when (e is not Gpt2OrleansException and not OperationCanceledException)
        {
            // The caller learns why (a bad source, a broken checkpoint) instead of a bare server error.
            throw new ModelUnavailableException(model, "it failed to load: " + (e is AggregateException { InnerException: { } inner } ? inner.Message : e.Message));
        }
    }

    public Task<ModelStatus> GetStatus()
    {
        var stats = _model.Generation?.Stats;
        return Task.FromResult(new ModelStatus(_model.Name, silo.SiloAddress.ToParsableString(), true, stats?.Running ?? 0, stats?.Waiting ?? 0,
            stats?.BlocksUsed ?? 0, stats?.BlocksFree ?? 0, stats?.BlocksCached ?? 0, _model.ParameterBytes, _model.Model.Config.NPositions, [_model.Head]));
    }

    public async IAsyncEnumerable<GeneratedToken> Generate(ModelRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (host.Draining) throw new RetryLaterException($"silo {silo.SiloAddress} is shutting down; retry", 1);
        IAsyncEnumerable<TokenEvent> events;
        try
        {
            var config = GenerationParametersMapper.ToConfig(request.Parameters, request.SessionDefaults, _model.Defaults);
            events = _model.RequireGeneration().SubmitAsync(
                new EngineRequest(request.Tenant, request.PromptIds, config) { Owner = request.Owner, ForkFrom = request.ForkFrom }, cancellationToken);
        }
        catch (Exception e) { throw GenerationParametersMapper.ToClusterError(e); }
        await foreach (var e in events) yield return GenerationParametersMapper.ToMessage(e, TokenText, TokenBytes);
    }

    public Task<IReadOnlyList<TokenLogprobs?>> Score(string tenant, IReadOnlyList<int> tokenIds, int topLogprobs = 0) =>
        GenerationParametersMapper.WithClusterErrors<IReadOnlyList<TokenLogprobs?>>(async () =>
            (await _model.RequireGeneration().ScoreAsync(tenant, tokenIds, topLogprobs))
                .Select(s => s is null ? null : GenerationParametersMapper.ToMessage(s, TokenText, TokenBytes)).ToList());

    public Task<IReadOnlyList<int>> Tokenize(string text) => Task.FromResult(_model.Tokenizer.Encode(text));

    public Task<IReadOnlyList<string>> DecodeTokens(IReadOnlyList<int> tokenIds)
    {
        if (tokenIds.Any(id => id < 0 || id >= _model.Tokenizer.VocabSize))
            throw new InvalidRequestException($"token ids must be between 0 and {_model.Tokenizer.VocabSize - 1}", "prompt");
        return Task.FromResult<IReadOnlyList<string>>(tokenIds.Select(TokenText).ToList());
    }

    public Task<string> Detokenize(IReadOnlyList<int> tokenIds)
    {
        CheckTokenIds(tokenIds, "tokens");
        return Task.FromResult(_model.Tokenizer.Decode(tokenIds.Where(id => id < _model.Tokenizer.VocabSize).ToList()));
    }

    public async Task<IReadOnlyList<TextEmbedding>> Embed(string tenant, IReadOnlyList<EmbeddingInput> inputs, string pooling = "mean")
    {
        if (inputs.Count == 0) throw new InvalidRequestException("no input to embed", "input");
        var ids = inputs.Select(input => input.TokenIds is { } tokens ? CheckTokenIds(tokens, "input") : Ids(input.Text ?? "")).ToList();
        return await GenerationParametersMapper.WithClusterErrors<IReadOnlyList<TextEmbedding>>(async () =>
        {
            var how = Inference.Embeddings.TextEmbedder.ParsePooling(pooling);
            var vectors = await Task.WhenAll(ids.Select(i => _model.Encoder.EmbedAsync(tenant, i, how)));
            return vectors.Select((v, i) => new TextEmbedding(v, ids[i].Count)).ToList();
        });
    }

    private IReadOnlyList<int> CheckTokenIds(IReadOnlyList<int> tokenIds, string parameter)
    {
        if (tokenIds.Count == 0) throw new InvalidRequestException("no token ids", parameter);
        if (tokenIds.Any(id => id < 0 || id >= _model.Model.Config.VocabSize))
            throw new InvalidRequestException($"token ids must be between 0 and {_model.Model.Config.VocabSize - 1}", parameter);
        return tokenIds;
    }

    /// <summary>A token's text; none for an id past the tokenizer (a padded vocabulary's), as HF's tokenizers decode it.</summary>
    private string TokenText(int id) => id < _model.Tokenizer.VocabSize ? _model.Tokenizer.Decode([id]) : "";

    private byte[] TokenBytes(int id) => id < _model.Tokenizer.VocabSize ? _model.Tokenizer.TokenBytes(id) : [];

    public async Task<IReadOnlyList<TextClassificationResult>> Classify(string tenant, IReadOnlyList<string> texts)
    {
        var engine = _model.RequireClassification();
        if (texts.Count == 0) throw new InvalidRequestException("no texts to classify", "input");
        var labels = _model.Model.Config.Id2Label;
        return await GenerationParametersMapper.WithClusterErrors<IReadOnlyList<TextClassificationResult>>(async () =>
            (await Task.WhenAll(texts.Select(t => engine.ClassifyAsync(tenant, Ids(t)))))
                .Select(r => new TextClassificationResult(r.Label,
                    r.Scores.Select((score, i) => new LabelScore(labels.GetValueOrDefault(i, $"LABEL_{i}"), score)).ToList())).ToList());
    }

    public async Task<IReadOnlyList<TokenLabel>> ClassifyTokens(string tenant, string text)
    {
        var engine = _model.RequireClassification();
        return await GenerationParametersMapper.WithClusterErrors<IReadOnlyList<TokenLabel>>(async () =>
            (await engine.ClassifyTokensAsync(tenant, Ids(text)))
                .Select(t => new TokenLabel(t.TokenId, t.Token, t.Label, Inference.Classification.Probabilities.Softmax(t.Logits).Max())).ToList());
    }

    public Task<QuestionAnswer> AnswerQuestion(string tenant, string question, string context, int? maxAnswerLength = null)
    {
        var engine = _model.Require("answer questions", ModelHeads.QuestionAnswering);
        if (string.IsNullOrWhiteSpace(question)) throw new InvalidRequestException("the question is empty", "question");
        if (string.IsNullOrWhiteSpace(context)) throw new InvalidRequestException("the context is empty", "context");
        return GenerationParametersMapper.WithClusterErrors(async () =>
        {
            var (ids, contextStart) = Inference.QuestionAnswering.AnswerSpans.Encode(_model.Tokenizer, question, context);
            if (ids.Count > _model.Model.Config.NPositions)
                throw new InvalidRequestException($"the question and context are {ids.Count} tokens; the model reads at most {_model.Model.Config.NPositions}", "context");
            var (start, end) = await engine.SpanLogitsAsync(tenant, ids);
            var (first, last, score) = Inference.QuestionAnswering.AnswerSpans.Best(start, end, contextStart,
                maxAnswerLength ?? Inference.QuestionAnswering.AnswerSpans.DefaultMaxAnswerLength);
            var span = Inference.QuestionAnswering.AnswerSpans.ToText(_model.Tokenizer, context, ids.Skip(contextStart).ToList(), first, last, score);
            return new QuestionAnswer(span.Answer, span.Start, span.End, span.Score);
        });
    }

    public async Task<IReadOnlyList<ChoiceScore>> ScoreChoices(string tenant, IReadOnlyList<string> choices)
    {
        var engine = _model.Require("score choices", ModelHeads.MultipleChoice);
        if (choices.Count < 2) throw new InvalidRequestException("at least two choices are needed", "choices");
        var ids = choices.Select(Ids).ToList();
        return await GenerationParametersMapper.WithClusterErrors<IReadOnlyList<ChoiceScore>>(async () =>
        {
            var logits = await Task.WhenAll(ids.Select(i => engine.ChoiceLogitAsync(tenant, i)));
            var scores = Inference.Classification.Probabilities.Softmax(logits);
            return logits.Select((l, i) => new ChoiceScore(l, scores[i])).ToList();
        });
    }

    private IReadOnlyList<int> Ids(string text) =>
        string.IsNullOrEmpty(text) ? throw new InvalidRequestException("an input text is empty", "input") : _model.Tokenizer.Encode(text);


    public Task Release(string owner)
    {
        _model.Generation?.Release(owner);
        return Task.CompletedTask;
    }

    public async Task<bool> Spill(string owner)
    {
        if (host.Spills is not { } spills) return false;
        var engine = _model.RequireGeneration();
        using var snapshot = await engine.ExportKeptAsync(owner);
        if (snapshot is null) return false; // nothing kept for this owner
        await ModelHost.SpillAsync(spills, _model, engine, owner, snapshot);
        return true;
    }

    public async Task<bool> Restore(string owner, string tenant, IReadOnlyList<int> tokens)
    {
        if (host.Spills is not { } spills) return false;
        using var snapshot = await Task.Run(() => spills.Take(owner, _model.Fingerprint, tokens, out var reason) ?? Log(reason));
        return snapshot is not null && await _model.RequireGeneration().ImportKeptAsync(owner, tenant, snapshot);

        Inference.KvCache.KvSnapshot? Log(string? reason)
        {
            logger.LogDebug("No spilled KV restored for {Owner}: {Reason}", owner, reason);
            return null;
        }
    }

    public Task DiscardSpill(string owner)
    {
        host.Spills?.Discard(owner);
        return Task.CompletedTask;
    }
}
