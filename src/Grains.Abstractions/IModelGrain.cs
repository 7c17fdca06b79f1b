namespace Gpt2Orleans.Grains;

/// <summary>
/// A model worker: one activation per model on each silo that serves it, keyed "model|silo"
/// (<see cref="GrainKeys.ModelWorker"/>). It fronts that silo's engine; the forward passes run on the engine's own
/// loop, never inside a grain turn.
/// </summary>
public interface IModelGrain : IGrainWithStringKey
{
    /// <summary>
    /// The worker's load and model. A model the silo was started with, or <paramref name="load"/> (a session about to
    /// use it), waits for its load; otherwise this only looks (a metrics scrape neither loads a registered model nor
    /// makes it recently used), and a replica not held here reads as not loaded.
    /// </summary>
    Task<ModelStatus> GetStatus(bool load = false);

    IAsyncEnumerable<GeneratedToken> Generate(ModelRequest request, CancellationToken cancellationToken = default);

    /// <summary>Each token's log-probability given its prefix (null for the first).</summary>
    Task<IReadOnlyList<TokenLogprobs?>> Score(string tenant, IReadOnlyList<int> tokenIds, int topLogprobs = 0);

    Task<IReadOnlyList<int>> Tokenize(string text);

    /// <summary>The text of the token ids together (a character split across tokens decodes whole).</summary>
    Task<string> Detokenize(IReadOnlyList<int> tokenIds);

    /// <summary>
    /// Each input's last hidden state pooled into one vector: <paramref name="pooling"/> "mean" over its tokens or
    /// "last" (its last token's); any head's model has them.
    /// </summary>
    Task<IReadOnlyList<TextEmbedding>> Embed(string tenant, IReadOnlyList<EmbeddingInput> inputs, string pooling = "mean");

    /// <summary>Each token's own text (a token that ends inside a UTF-8 character shows the replacement character).</summary>
    Task<IReadOnlyList<string>> DecodeTokens(IReadOnlyList<int> tokenIds);

    /// <summary>Labels for each text (a sequence-classification model).</summary>
    Task<IReadOnlyList<TextClassificationResult>> Classify(string tenant, IReadOnlyList<string> texts);

    /// <summary>A label for every token of the text (a token-classification model).</summary>
    Task<IReadOnlyList<TokenLabel>> ClassifyTokens(string tenant, string text);

    /// <summary>
    /// The best answer span of <paramref name="context"/> for <paramref name="question"/> (a question-answering model), of at
    /// most <paramref name="maxAnswerLength"/> tokens (null: HF's pipeline default, 15).
    /// </summary>
    Task<QuestionAnswer> AnswerQuestion(string tenant, string question, string context, int? maxAnswerLength = null);

    /// <summary>Each choice's multiple-choice logit and its softmax over the choices (a double-heads model).</summary>
    Task<IReadOnlyList<ChoiceScore>> ScoreChoices(string tenant, IReadOnlyList<string> choices);

    /// <summary>
    /// Drops the KV the engine keeps for <paramref name="owner"/>'s conversation (<see cref="ModelRequest.Owner"/>); its
    /// full blocks stay in the prefix cache until memory is needed.
    /// </summary>
    Task Release(string owner);

    /// <summary>Writes <paramref name="owner"/>'s kept KV to this silo's disk and releases it; false when nothing was kept or spilling is off.</summary>
    Task<bool> Spill(string owner);

    /// <summary>
    /// Brings back <paramref name="owner"/>'s spilled KV as its kept conversation when it is still valid (same model,
    /// same tokens, intact); false otherwise (its next turn re-prefills).
    /// </summary>
    Task<bool> Restore(string owner, string tenant, IReadOnlyList<int> tokens);

    /// <summary>Forgets whatever <paramref name="owner"/> spilled.</summary>
    Task DiscardSpill(string owner);
}
