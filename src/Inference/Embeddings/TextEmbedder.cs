using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Embeddings;

/// <summary>How a text's hidden states become one vector: their mean over the real (non-padding) tokens, or the last real token's.</summary>
public enum EmbeddingPooling { Mean, Last }

/// <summary>
/// Text embeddings from <c>GPT2Model</c>'s last hidden state (after <c>ln_f</c>, as HF's <c>last_hidden_state</c>),
/// pooled per row of a right-padded batch. Any GPT-2 checkpoint has this transformer, whatever its head.
/// </summary>
public static class TextEmbedder
{
    public static EmbeddingPooling ParsePooling(string? name) => name switch
    {
        null or "mean" => EmbeddingPooling.Mean,
        "last" => EmbeddingPooling.Last,
        _ => throw new ArgumentException($"pooling '{name}' is not 'mean' or 'last'", "pooling"),
    };

    /// <summary>One forward pass of the batch; each row's pooled vector in float32.</summary>
    public static IReadOnlyList<float[]> Embed(Gpt2Model transformer, BatchEncoding batch, EmbeddingPooling pooling)
    {
        using var scope = torch.NewDisposeScope();
        using var output = transformer.forward(batch.InputIdsTensor(transformer.Device), batch.AttentionMaskTensor(transformer.Device));
        var hidden = output.LastHiddenState.to(ScalarType.Float32).cpu(); // (B, T, E)
        var mask = batch.AttentionMaskTensor(torch.CPU).to(ScalarType.Float32).unsqueeze(-1); // (B, T, 1)
        var lengths = mask.sum(1); // (B, 1)
        var pooled = pooling == EmbeddingPooling.Mean
            ? hidden.mul(mask).sum(1).div(lengths)
            : hidden.gather(1, lengths.to(ScalarType.Int64).sub(1).unsqueeze(-1).expand(-1, 1, hidden.shape[2])).squeeze(1);
        return Enumerable.Range(0, batch.BatchSize).Select(i => pooled[i].data<float>().ToArray()).ToList();
    }
}
