using Gpt2Orleans.Inference.Generation;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// Turns chosen tokens into the events that leave the engine (vLLM's output processor): streaming text (never a
/// broken UTF-8 character), stop strings cut out here and only here (the text never contains the stop string; the
/// event names the one that ended it), finish reasons and usage.
/// </summary>
internal static class OutputProcessor
{
    /// <summary>The event for one sampled token; a completed stop string ends the sequence (and wins over eos or length).</summary>
    public static TokenEvent ToEvent(CheckedToken token)
    {
        var sequence = token.Sequence;
        var (text, stop) = sequence.Output.Push(token.Token, last: token.Finish is not null);
        var finish = stop is not null ? FinishReason.StopString : token.Finish;
        return new TokenEvent(sequence.Index, token.Token, text, token.Logprob, finish,
            finish is null ? null : new Usage(sequence.PromptLength, sequence.Generated, sequence.CachedPromptTokens), StopString: stop);
    }

    /// <summary>A beam search's returned sequences, best first, each streamed once it is chosen; the last event of each carries HF's sequence score.</summary>
    public static IEnumerable<TokenEvent> BeamResults(EngineRequestState request, IReadOnlyList<BeamSearchScorer.Finished> best, int promptLength, int cachedPromptTokens)
    {
        for (int k = 0; k < best.Count; k++)
        {
            var output = new SequenceOutput(request.Tokenizer, []);
            var tokens = best[k].Tokens;
            var logprobs = best[k].Payload as IReadOnlyList<TokenLogprob>;
            for (int t = 0; t < tokens.Count; t++)
            {
                bool last = t == tokens.Count - 1;
                var (text, _) = output.Push(tokens[t], last);
                yield return new TokenEvent(k, tokens[t], text, logprobs?[t],
                    last ? (best[k].EndedWithEos ? FinishReason.EndOfSequence : FinishReason.Length) : null,
                    last ? new Usage(promptLength, tokens.Count, cachedPromptTokens) : null, Score: last ? best[k].Score : null);
            }
        }
    }
}
