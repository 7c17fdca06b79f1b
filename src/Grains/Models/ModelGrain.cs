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
    private ModelDefinition _definition = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var (model, siloKey, version) = GrainKeys.ParseModelWorker(this.GetPrimaryKeyString());
        if (siloKey != silo.SiloAddress.ToParsableString())
            throw new ModelUnavailableException(model, $"worker for silo {siloKey} activated on {silo.SiloAddress}", 1);
        _definition = host.StaticModels.GetValueOrDefault(model) is { } own && version == 0 ? own
            : host.HeldDefinition(new ModelVersion(model, version)) ?? await Current(model, version);
    }

    /// <summary>The catalog's definition, when it is still <paramref name="version"/>: an older one is not loaded again.</summary>
    private async Task<ModelDefinition> Current(string model, int version)
    {
        var definition = (await GrainFactory.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).GetModel(model)).Definition;
        return definition.Version == version ? definition
            : throw new ModelUnavailableException(model, $"version {version} is superseded by version {definition.Version}", 1);
    }

    /// <summary>Runs <paramref name="call"/> on this worker's replica, loaded first when it is not, and not evictable meanwhile.</summary>
    private async Task<T> Leased<T>(Func<HostedModel, Task<T>> call)
    {
        using var lease = await host.LeaseAsync(_definition);
        return await call(lease.Model);
    }

    public async Task<ModelStatus> GetStatus(bool load = false)
    {
        using var lease = load || _definition.Static ? await host.LeaseAsync(_definition) : host.TryLease(Key);
        if (lease?.Model is not { } model)
            return new ModelStatus(_definition.Name, silo.SiloAddress.ToParsableString(), false, 0, 0, 0, 0, 0, 0, 0, _definition.Heads);
        var stats = model.Generation?.Stats;
        return new ModelStatus(model.Name, silo.SiloAddress.ToParsableString(), true, stats?.Running ?? 0, stats?.Waiting ?? 0,
            stats?.BlocksUsed ?? 0, stats?.BlocksFree ?? 0, stats?.BlocksCached ?? 0, model.ParameterBytes, model.Model.Config.NPositions, [model.Head]);
    }

    // Counted open from before the draining check (a drain that has begun sees it or refuses it) until the caller has read it to its end.
    public IAsyncEnumerable<GeneratedToken> Generate(ModelRequest request, CancellationToken cancellationToken = default) =>
        host.Streams.Track(Generation(request, cancellationToken));

    private async IAsyncEnumerable<GeneratedToken> Generation(ModelRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (host.Draining) throw new RetryLaterException($"silo {silo.SiloAddress} is shutting down; retry", 1);
        using var lease = await host.LeaseAsync(_definition, cancellationToken); // held until the stream ends: a model with running streams stays
        var model = lease.Model;
        IAsyncEnumerable<TokenEvent> events;
        try
        {
            var config = GenerationParametersMapper.ToConfig(request.Parameters, request.SessionDefaults, model.Defaults);
            events = model.RequireGeneration().SubmitAsync(
                new EngineRequest(request.Tenant, request.PromptIds, config) { Owner = request.Owner, ForkFrom = request.ForkFrom }, cancellationToken);
        }
        catch (Exception e) { throw GenerationParametersMapper.ToClusterError(e); }
        await foreach (var e in events) yield return GenerationParametersMapper.ToMessage(e, id => TokenText(model, id), id => TokenBytes(model, id));
    }

    public Task<IReadOnlyList<TokenLogprobs?>> Score(string tenant, IReadOnlyList<int> tokenIds, int topLogprobs = 0) => Leased(model =>
        GenerationParametersMapper.WithClusterErrors<IReadOnlyList<TokenLogprobs?>>(async () =>
            (await model.RequireGeneration().ScoreAsync(tenant, tokenIds, topLogprobs))
                .Select(s => s is null ? null : GenerationParametersMapper.ToMessage(s, id => TokenText(model, id), id => TokenBytes(model, id))).ToList()));

    public Task<IReadOnlyList<int>> Tokenize(string text) => Leased(model => Task.FromResult(model.Tokenizer.Encode(text)));

    public Task<IReadOnlyList<string>> DecodeTokens(IReadOnlyList<int> tokenIds) => Leased(model =>
    {
        if (tokenIds.Any(id => id < 0 || id >= model.Tokenizer.VocabSize))
            throw new InvalidRequestException($"token ids must be between 0 and {model.Tokenizer.VocabSize - 1}", "prompt");
        return Task.FromResult<IReadOnlyList<string>>(tokenIds.Select(id => TokenText(model, id)).ToList());
    });

    public Task<string> Detokenize(IReadOnlyList<int> tokenIds) => Leased(model =>
    {
        CheckTokenIds(model, tokenIds, "tokens");
        return Task.FromResult(model.Tokenizer.Decode(tokenIds.Where(id => id < model.Tokenizer.VocabSize).ToList()));
    });

    public Task<IReadOnlyList<TextEmbedding>> Embed(string tenant, IReadOnlyList<EmbeddingInput> inputs, string pooling = "mean") => Leased(model =>
    {
        if (inputs.Count == 0) throw new InvalidRequestException("no input to embed", "input");
        var ids = inputs.Select(input => input.TokenIds is { } tokens ? CheckTokenIds(model, tokens, "input") : Ids(model, input.Text ?? "")).ToList();
        return GenerationParametersMapper.WithClusterErrors<IReadOnlyList<TextEmbedding>>(async () =>
        {
            var how = Inference.Embeddings.TextEmbedder.ParsePooling(pooling);
            var vectors = await Task.WhenAll(ids.Select(i => model.Encoder.EmbedAsync(tenant, i, how)));
            return vectors.Select((v, i) => new TextEmbedding(v, ids[i].Count)).ToList();
        });
    });

    private static IReadOnlyList<int> CheckTokenIds(HostedModel model, IReadOnlyList<int> tokenIds, string parameter)
    {
        if (tokenIds.Count == 0) throw new InvalidRequestException("no token ids", parameter);
        if (tokenIds.Any(id => id < 0 || id >= model.Model.Config.VocabSize))
            throw new InvalidRequestException($"token ids must be between 0 and {model.Model.Config.VocabSize - 1}", parameter);
        return tokenIds;
    }

    /// <summary>A token's text; none for an id past the tokenizer (a padded vocabulary's), as HF's tokenizers decode it.</summary>
    private static string TokenText(HostedModel model, int id) => id < model.Tokenizer.VocabSize ? model.Tokenizer.Decode([id]) : "";

    private static byte[] TokenBytes(HostedModel model, int id) => id < model.Tokenizer.VocabSize ? model.Tokenizer.TokenBytes(id) : [];

    public Task<IReadOnlyList<TextClassificationResult>> Classify(string tenant, IReadOnlyList<string> texts) => Leased(model =>
    {
        var engine = model.RequireClassification();
        if (texts.Count == 0) throw new InvalidRequestException("no texts to classify", "input");
        var labels = model.Model.Config.Id2Label;
        return GenerationParametersMapper.WithClusterErrors<IReadOnlyList<TextClassificationResult>>(async () =>
            (await Task.WhenAll(texts.Select(t => engine.ClassifyAsync(tenant, Ids(model, t)))))
                .Select(r => new TextClassificationResult(r.Label,
                    r.Scores.Select((score, i) => new LabelScore(labels.GetValueOrDefault(i, $"LABEL_{i}"), score)).ToList())).ToList());
    });

    public Task<IReadOnlyList<TokenLabel>> ClassifyTokens(string tenant, string text) => Leased(model =>
    {
        var engine = model.RequireClassification();
        return GenerationParametersMapper.WithClusterErrors<IReadOnlyList<TokenLabel>>(async () =>
            (await engine.ClassifyTokensAsync(tenant, Ids(model, text)))
                .Select(t => new TokenLabel(t.TokenId, t.Token, t.Label, Inference.Classification.Probabilities.Softmax(t.Logits).Max())).ToList());
    });

    public Task<QuestionAnswer> AnswerQuestion(string tenant, string question, string context, int? maxAnswerLength = null) => Leased(model =>
    {
        var engine = model.Require("answer questions", ModelHeads.QuestionAnswering);
        if (string.IsNullOrWhiteSpace(question)) throw new InvalidRequestException("the question is empty", "question");
        if (string.IsNullOrWhiteSpace(context)) throw new InvalidRequestException("the context is empty", "context");
        return GenerationParametersMapper.WithClusterErrors(async () =>
        {
            var (ids, contextStart) = Inference.QuestionAnswering.AnswerSpans.Encode(model.Tokenizer, question, context);
            if (ids.Count > model.Model.Config.NPositions)
                throw new InvalidRequestException($"the question and context are {ids.Count} tokens; the model reads at most {model.Model.Config.NPositions}", "context");
            var (start, end) = await engine.SpanLogitsAsync(tenant, ids);
            var (first, last, score) = Inference.QuestionAnswering.AnswerSpans.Best(start, end, contextStart,
                maxAnswerLength ?? Inference.QuestionAnswering.AnswerSpans.DefaultMaxAnswerLength);
            var span = Inference.QuestionAnswering.AnswerSpans.ToText(model.Tokenizer, context, ids.Skip(contextStart).ToList(), first, last, score);
            return new QuestionAnswer(span.Answer, span.Start, span.End, span.Score);
        });
    });

    public Task<IReadOnlyList<ChoiceScore>> ScoreChoices(string tenant, IReadOnlyList<string> choices) => Leased(model =>
    {
        var engine = model.Require("score choices", ModelHeads.MultipleChoice);
        if (choices.Count < 2) throw new InvalidRequestException("at least two choices are needed", "choices");
        var ids = choices.Select(c => Ids(model, c)).ToList();
        return GenerationParametersMapper.WithClusterErrors<IReadOnlyList<ChoiceScore>>(async () =>
        {
            var logits = await Task.WhenAll(ids.Select(i => engine.ChoiceLogitAsync(tenant, i)));
            var scores = Inference.Classification.Probabilities.Softmax(logits);
            return logits.Select((l, i) => new ChoiceScore(l, scores[i])).ToList();
        });
    });

    private static IReadOnlyList<int> Ids(HostedModel model, string text) =>
        string.IsNullOrEmpty(text) ? throw new InvalidRequestException("an input text is empty", "input") : model.Tokenizer.Encode(text);

    /// <summary>What an evicted replica kept went with it, so releasing or spilling never loads one.</summary>
    public Task Release(string owner)
    {
        using var lease = host.TryLease(Key);
        lease?.Model.Generation?.Release(owner);
        return Task.CompletedTask;
    }

    public async Task<bool> Spill(string owner)
    {
        if (host.Spills is not { } spills) return false;
        using var lease = host.TryLease(Key);
        if (lease?.Model is not { Generation: { } engine } model) return false;
        using var snapshot = await engine.ExportKeptAsync(owner);
        if (snapshot is null) return false; // nothing kept for this owner
        await ModelHost.SpillAsync(spills, model, engine, owner, snapshot);
        return true;
    }

    private ModelVersion Key => new(_definition.Name, _definition.Version);

    public Task<bool> Restore(string owner, string tenant, IReadOnlyList<int> tokens) => Leased(async model =>
    {
        if (host.Spills is not { } spills) return false;
        using var snapshot = await Task.Run(() => spills.Take(owner, model.Fingerprint, tokens, out var reason) ?? Log(reason));
        return snapshot is not null && await model.RequireGeneration().ImportKeptAsync(owner, tenant, snapshot);

        Inference.KvCache.KvSnapshot? Log(string? reason)
        {
            logger.LogDebug("No spilled KV restored for {Owner}: {Reason}", owner, reason);
            return null;
        }
    });

    public Task DiscardSpill(string owner)
    {
        host.Spills?.Discard(owner);
        return Task.CompletedTask;
    }
}
