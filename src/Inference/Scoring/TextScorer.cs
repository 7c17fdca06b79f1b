using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Scoring;

/// <summary>Scores text under a language model: per-token log-probabilities, loss and perplexity.</summary>
public sealed class TextScorer(Gpt2LMHeadModel model, Gpt2Tokenizer tokenizer)
{
    public TextScore Score(string text) => Score(tokenizer.Encode(text));

    public TextScore Score(IReadOnlyList<int> ids)
    {
        if (ids.Count < 2) throw new ArgumentException($"text: scoring needs at least 2 tokens, got {ids.Count}", "text");
        if (ids.Count > model.Config.NPositions)
            throw new ArgumentException($"text: {ids.Count} tokens exceed the model's context of {model.Config.NPositions} positions", "text");
        using var scope = torch.NewDisposeScope();
        var input = torch.tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Count], device: model.Device);
        using var output = model.forward(input);
        var logp = output.Logits[0].narrow(0, 0, ids.Count - 1).to(ScalarType.Float32).log_softmax(-1); // (T−1, V)
        var next = input[0].narrow(0, 1, ids.Count - 1).unsqueeze(1);
        var picked = logp.gather(1, next).squeeze(1).to(ScalarType.Float64).cpu().data<double>().ToArray();
        double loss = -picked.Average();
        return new TextScore(ids, [null, .. picked.Select(p => (double?)p)], loss, Math.Exp(loss));
    }
}
