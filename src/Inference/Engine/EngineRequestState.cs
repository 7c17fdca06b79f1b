using System.Threading.Channels;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>A submitted request: its parameters resolved against the model, and the channel its events go to.</summary>
internal sealed class EngineRequestState(EngineRequest request, IReadOnlyList<int> eos, int maxNewTokens, Gpt2Tokenizer tokenizer)
{
    public EngineRequest Request { get; } = request;
    public IReadOnlyList<int> Eos { get; } = eos;
    public int MaxNewTokens { get; } = maxNewTokens;
    public Gpt2Tokenizer Tokenizer { get; } = tokenizer;
    public Channel<TokenEvent> Events { get; } = Channel.CreateUnbounded<TokenEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    public DateTime SubmittedAt { get; } = DateTime.UtcNow;
    public bool FirstTokenSent { get; set; }
    public int OpenSequences { get; set; } = request.Config.NumReturnSequences;
    public volatile bool Cancelled;
    /// <summary>The sequence this request finished and kept for a next turn (the handle is in its last event).</summary>
    public long? KeptSequence { get; set; }
    /// <summary>Whether the reader was given the event that carries the kept handle (set by the reader's thread).</summary>
    public volatile bool KeptHandedOver;

    /// <summary>Prefill-only scoring: the prompt's log-probabilities are the result, nothing is generated.</summary>
    public TaskCompletionSource<IReadOnlyList<TokenLogprob?>>? Score { get; init; }
    public int ScoreTopLogprobs { get; init; }

    /// <summary>Beam search: the scorer, the live beams in order and their running scores, and the steps taken.</summary>
    public BeamSearchScorer? Beam { get; init; }
    public List<EngineSequence> Beams { get; set; } = [];
    public double[] BeamScores { get; set; } = [];
    public int BeamSteps { get; set; }
}
