using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Scoring;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>
/// The test oracle for the engine: the same processors, warpers and seeded draws, but every step recomputes the
/// whole sequence with the model's dense forward (no KV cache, no paging, no batching), so it shares nothing with
/// the serving path that could hide a bug there. Slow by design; tiny models only.
/// </summary>
public static class DenseReference
{
    /// <summary>Greedy search or sampling for one prompt: the new token ids (eos included when it ended the sequence), per returned sequence.</summary>
    public static IReadOnlyList<IReadOnlyList<int>> Generate(Gpt2LMHeadModel model, IReadOnlyList<int> prompt, GenerationConfig config)
    {
        var eos = config.ResolveEos(model.Config);
        int maxNew = config.MaxNewTokensFor(prompt.Count, model.Config.NPositions);
        var results = new List<IReadOnlyList<int>>();
        for (int row = 0; row < config.NumReturnSequences; row++)
        {
            var processors = LogitsProcessorList.Create(config, eos, prompt.Count, prompt.Count + maxNew);
            var sampler = config.DoSample ? new SequenceSampler(SequenceSampler.SeedFor(config.Seed, row)) : null;
            var tokens = prompt.ToList();
            while (tokens.Count - prompt.Count < maxNew && tokens.Count < model.Config.NPositions)
            {
                using var scope = torch.NewDisposeScope();
                using var output = model.forward(torch.tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Count]), lastPositionOnly: true);
                var scores = processors.Process([tokens], output.Logits[0].to(ScalarType.Float32).clone());
                int token = sampler is null
                    ? (int)scores.argmax(-1).item<long>()
                    : sampler.Sample(processors.Warp([tokens], scores).softmax(-1).data<float>().ToArray());
                tokens.Add(token);
                if (eos.Contains(token)) break;
            }
            results.Add(tokens.Skip(prompt.Count).ToList());
        }
        return results;
    }

    /// <summary>Each token's log-probability given its prefix (dense forward over the whole text), loss and perplexity.</summary>
    public static TextScore Score(Gpt2LMHeadModel model, IReadOnlyList<int> ids)
    {
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
