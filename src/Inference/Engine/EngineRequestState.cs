using System.Threading.Channels;
using Gpt2Orleans.Inference.Constraints;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Engine;

/// <summary>A submitted request: its parameters resolved against the model, its live sequences, and the channel its events go to.</summary>
internal sealed class EngineRequestState(EngineRequest request, IReadOnlyList<int> eos, int pad, int maxNewTokens, Gpt2Tokenizer tokenizer)
{
    public EngineRequest Request { get; } = request;
    public GenerationConfig Config => Request.Config;
    public string Tenant => Request.TenantId;
    public IReadOnlyList<int> Eos { get; } = eos;
    public int Pad { get; } = pad;
    public int MaxNewTokens { get; } = maxNewTokens;
    public Gpt2Tokenizer Tokenizer { get; } = tokenizer;
    public Channel<TokenEvent> Events { get; } = Channel.CreateUnbounded<TokenEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    public DateTime SubmittedAt { get; } = DateTime.UtcNow;
    /// <summary>When the loop took it from the queue into the scheduler.</summary>
    public DateTime? AdmittedAt { get; set; }
    public DateTime? FirstTokenAt { get; set; }
    public bool FirstTokenSent => FirstTokenAt is not null;
    public int GeneratedTokens { get; set; }
    /// <summary>Its trace span (<see cref="EngineTracing"/>), until it ends.</summary>
    public System.Diagnostics.Activity? Span { get; set; }
    public volatile bool Cancelled;

    /// <summary>How many sequences the prompt becomes once it is computed: its beams, or its num_return_sequences samples.</summary>
    public int Width => Score is not null ? 1 : Config.IsBeamSearch ? Config.NumBeams : Config.NumReturnSequences;
    /// <summary>The request's live sequences (the prompt's, then its forks); empty once it has finished.</summary>
    public List<EngineSequence> Members { get; } = [];
    /// <summary>Sequences still to finish (beam search finishes all at once).</summary>
    public int OpenSequences { get; set; } = request.Config.IsBeamSearch ? 1 : request.Config.NumReturnSequences;

    /// <summary>Prefill-only scoring: the prompt's log-probabilities are the result, nothing is generated.</summary>
    public TaskCompletionSource<IReadOnlyList<TokenLogprob?>>? Score { get; init; }
    public int ScoreTopLogprobs { get; init; }

    /// <summary>Constrained decoding: the request's grammar run on this tokenizer's vocabulary.</summary>
    public GrammarAutomaton? Grammar { get; init; }

    /// <summary>Beam search: the request-level policy that decides its beams.</summary>
    public BeamSearch? Beams { get; init; }
}
