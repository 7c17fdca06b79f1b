using System.Runtime.CompilerServices;
using Gpt2Orleans.Grains.Placement;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Sessions;

/// <summary>
/// One conversation ("tenant/session"). Its history is persisted after every turn; while active it keeps its
/// sequence's KV in its model's engine between turns (continuing it, so only the new turn is prefilled). On
/// deactivation the KV is spilled to the silo's disk (or released); the next activation restores it when it is
/// still valid, and otherwise re-prefills the persisted tokens (prefix cache permitting).
/// Reentrant so the transcript can be read during a reply; turns themselves run one at a time.
/// </summary>
[ServingSiloPlacement, Reentrant]
public sealed class SessionGrain(
    [PersistentState(StorageNames.SessionState, StorageNames.Sessions)] IPersistentState<SessionState> state,
    ILocalSiloDetails silo,
    Routing.ModelRouter router,
    Models.ModelHost host,
    ILogger<SessionGrain> logger) : Grain, ISessionGrain
{
    private string Tenant => GrainKeys.ParseSession(this.GetPrimaryKeyString()).Tenant;
    private string SessionId => GrainKeys.ParseSession(this.GetPrimaryKeyString()).Session;
    private string Key => this.GetPrimaryKeyString(); // the owner of this conversation's KV in its worker's engine
    private IModelGrain? _worker;
    private ModelVersion? _local; // the worker's replica when it is on this silo (placement put the session where its model is): its tokenizer is right here
    private int? _contextLength; // the model's, asked once per worker
    private bool _restoreTried; // the first turn of an activation looks for KV spilled by the last one
    private string? _forkFrom;  // a fork's source session, whose kept KV its first turn shares copy-on-write
    /// <summary>Turns run one at a time. A turn that comes while another ends (its client hung up: the cancellation takes
    /// a moment to reach the grain) waits for it, up to <see cref="TurnWait"/>, rather than being refused.</summary>
    private readonly SemaphoreSlim _turn = new(1, 1);
    private static readonly TimeSpan TurnWait = TimeSpan.FromSeconds(5);

    public async Task<SessionTranscript> Create(SessionSettings settings)
    {
        RequireNew();
        await GrainFactory.GetGrain<ITenantGrain>(Tenant).CheckModel(settings.Model);
        var (worker, template) = await WorkerAsync(settings.Model);
        return await Start(new SessionState
        {
            ChatTemplate = template,
            Exists = true,
            Model = settings.Model,
            SystemPrompt = settings.SystemPrompt,
            Defaults = settings.Defaults,
            ContextPolicy = settings.ContextPolicy,
            CreatedAt = DateTimeOffset.UtcNow,
            Tokens = string.IsNullOrWhiteSpace(settings.SystemPrompt) ? [] : [.. await Tokenize(worker, template.SystemText(settings.SystemPrompt))],
        });
    }

    public async Task<SessionTranscript> CreateFrom(SessionState source, string? forkFrom = null)
    {
        RequireNew();
        _forkFrom = forkFrom;
        return await Start(new SessionState
        {
            Exists = true, Model = source.Model, SystemPrompt = source.SystemPrompt, Defaults = source.Defaults,
            ContextPolicy = source.ContextPolicy, CreatedAt = DateTimeOffset.UtcNow, ChatTemplate = source.ChatTemplate,
            Turns = [.. source.Turns], Tokens = [.. source.Tokens], TurnStarts = [.. source.TurnStarts], OpenedBy = source.OpenedBy,
        });
    }

    // Counted open until the caller has read the stream to its end: a draining silo waits for the turn to be read and persisted.
    public IAsyncEnumerable<GeneratedToken> Send(string userText, GenerationParameters? parameters = null, CancellationToken cancellationToken = default) =>
        host.Streams.Track(Turn(userText, parameters, cancellationToken));

    private async IAsyncEnumerable<GeneratedToken> Turn(string userText, GenerationParameters? parameters,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        RequireExists();
        if (string.IsNullOrWhiteSpace(userText)) throw new InvalidRequestException("the message is empty", "content");
        if (!await _turn.WaitAsync(TurnWait, cancellationToken))
            throw new ConflictException($"session '{SessionId}' is still answering another turn; send the next one when it ends", "session");
        try
        {
            var (worker, _) = await WorkerAsync(state.State.Model);
            int contextLength = _contextLength ??= await LocalOr(m => m.Model.Config.NPositions, async () => (await worker.GetStatus(load: true)).ContextLength);
            // The model's silo layers these over the session's defaults; the two the turn plans with are settled here.
            var defaults = state.State.Defaults;
            var template = state.State.ChatTemplate ?? ChatTemplate.Default;
            // A constrained reply (structured output) ends where its grammar does; the template's stops would only cut it.
            bool constrained = parameters?.Constraint is not null;
            var merged = (parameters ?? new()) with
            {
                StopStrings = constrained ? parameters!.StopStrings ?? defaults.StopStrings : template.StopsWith(parameters?.StopStrings ?? defaults.StopStrings),
                MaxNewTokens = parameters?.MaxNewTokens ?? defaults.MaxNewTokens ?? ChatTemplate.DefaultReplyTokens,
            };
            var turnTokens = await Tokenize(worker, template.UserTurnText(userText, first: state.State.TurnStarts.Count == 0, state.State.OpenedBy));
            var plan = ConversationWindow.Plan(state.State, turnTokens, merged.MaxNewTokens!.Value, contextLength);
            if (!_restoreTried && _forkFrom is null && plan.DroppedTurns == 0 && state.State.Tokens.Count > 0)
                await worker.Restore(Key, Tenant, state.State.Tokens); // spilled by the last activation here
            _restoreTried = true;

            // The engine continues the KV it kept for this session when it still starts the prompt (dropped turns, an
            // uncommitted turn or another worker make it stale, and the engine recomputes); a fork's first turn shares its source's.
            var tenant = GrainFactory.GetGrain<ITenantGrain>(Tenant);
            var stream = await tenant.BeginStream(state.State.Model); // the tenant's stream and token quotas
            var generated = new List<int>();
            var text = new System.Text.StringBuilder();
            var request = new ModelRequest { Tenant = Tenant, PromptIds = plan.Prompt, Parameters = merged, SessionDefaults = defaults, Owner = Key, ForkFrom = _forkFrom };
            _forkFrom = null;
            TokenUsage? usage = null;
            string? stop = null;
            bool completed = false;
            try
            {
                await foreach (var token in worker.Generate(request, cancellationToken).WithCancellation(cancellationToken))
                {
                    generated.Add(token.TokenId);
                    text.Append(token.Text);
                    stop = token.StopString ?? stop;
                    usage = token.Usage ?? usage;
                    yield return token;
                }
                completed = true;
            }
            finally
            {
                if (!completed) await ForgetAbandonedTurn(worker);
                await tenant.EndStream(stream, state.State.Model, usage ?? new TokenUsage(plan.Prompt.Count, generated.Count, 0));
            }
            ConversationWindow.Commit(state.State, plan, userText.Trim(), constrained ? text.ToString().Trim() : template.ReplyText(text.ToString()), generated);
            state.State.OpenedBy = template.OpenedBy(stop);
            await state.WriteStateAsync();
        }
        finally { _turn.Release(); }
    }

    public Task<SessionTranscript> GetTranscript()
    {
        RequireExists();
        return Task.FromResult(Transcript());
    }

    public async Task<SessionTranscript> Fork(string newSessionId)
    {
        RequireExists();
        var copy = GrainFactory.GetGrain<ISessionGrain>(GrainKeys.Session(Tenant, newSessionId));
        RequestContext.Set(GrainKeys.ModelContextKey, state.State.Model);
        return await copy.CreateFrom(state.State, forkFrom: Key);
    }

    public async Task Delete()
    {
        // Listed but not stored (a create or delete cut short): deleting finishes what was cut short.
        if (!state.State.Exists && await GrainFactory.GetGrain<ITenantGrain>(Tenant).UnregisterSession(SessionId)) return;
        RequireExists();
        await Release();
        await (_worker ?? (await WorkerAsync(state.State.Model)).Worker).DiscardSpill(Key);
        await state.ClearStateAsync();
        state.State = new SessionState();
        await GrainFactory.GetGrain<ITenantGrain>(Tenant).UnregisterSession(SessionId);
        DeactivateOnIdle();
    }

    /// <summary>An idle session leaves: its KV goes to this silo's disk (when spilling is on) so the next activation here can restore it.</summary>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (reason.ReasonCode == DeactivationReasonCode.ShuttingDown) return; // the stopping silo spills every kept conversation itself
        try
        {
            if (_worker is not null && !await _worker.Spill(Key)) await Release();
        }
        catch (Exception e) { logger.LogDebug(e, "Could not spill or release the KV of session {Session}", this.GetPrimaryKeyString()); }
    }

    /// <summary>A turn whose reader went away is not committed, so whatever KV it kept no longer matches the conversation: drop it now.</summary>
    private async Task ForgetAbandonedTurn(IModelGrain worker)
    {
        try { await worker.Release(Key); }
        catch (Exception e) { logger.LogDebug(e, "Could not release the abandoned turn of session {Session}", Key); } // its silo may be gone, and its KV with it
    }

    /// <summary>Token ids of a turn's text: with the model's tokenizer on this silo (plain code, no grain call), else its worker's.</summary>
    private Task<IReadOnlyList<int>> Tokenize(IModelGrain worker, string text) => LocalOr(m => m.Tokenizer.Encode(text), () => worker.Tokenize(text));

    /// <summary>What <paramref name="read"/> gives from the worker's replica when it is loaded on this silo (plain code, no grain call); <paramref name="remote"/> otherwise.</summary>
    private async Task<T> LocalOr<T>(Func<Models.HostedModel, T> read, Func<Task<T>> remote)
    {
        using (var lease = _local is { } key ? host.TryLease(key) : null)
            if (lease is not null) return read(lease.Model);
        return await remote();
    }

    private async Task Release()
    {
        if (_worker is not null) await _worker.Release(Key);
    }

    private void RequireExists()
    {
        if (!state.State.Exists) throw new SessionNotFoundException(SessionId);
    }

    /// <summary>
    /// The worker for the model's current version, on this silo when it holds it (the usual case: placement put the
    /// session there), otherwise where the catalog says, so a turn never depends on where the session landed; and the
    /// model's chat template. Resolved again on every turn (from the silo's fresh list, no grain call): when the
    /// worker's silo has gone or the model moved to a new version, the kept KV stayed behind, and it is released there.
    /// </summary>
    private async Task<(IModelGrain Worker, ChatTemplate Template)> WorkerAsync(string model)
    {
        var info = await router.FindAsync(model) ?? throw new ModelUnavailableException(model, "the catalog does not list it");
        var worker = await router.RouteAsync(info, silo.SiloAddress.ToParsableString());
        if (_worker is { } old && old.GetPrimaryKeyString() != worker.GetPrimaryKeyString())
        {
            await ForgetAbandonedTurn(old); // a new version or another silo: its KV is no use
            _contextLength = null;
        }
        var (_, workerSilo, version) = GrainKeys.ParseModelWorker(worker.GetPrimaryKeyString());
        _local = workerSilo == silo.SiloAddress.ToParsableString() ? new ModelVersion(model, version) : null;
        _worker = worker;
        return (worker, info.Definition.Chat);
    }

    private void RequireNew()
    {
        if (state.State.Exists) throw new InvalidRequestException($"session '{SessionId}' already exists", "session");
    }

    /// <summary>Begins the session with <paramref name="first"/>: counted against the tenant's session quota, then persisted.</summary>
    private async Task<SessionTranscript> Start(SessionState first)
    {
        var tenant = GrainFactory.GetGrain<ITenantGrain>(Tenant);
        await tenant.RegisterSession(SessionId, first.Model); // listed first: a crash before the write leaves a listed session that does not exist, which the tenant drops
        state.State = first;
        try { await state.WriteStateAsync(); }
        catch
        {
            state.State = new SessionState();
            await tenant.UnregisterSession(SessionId);
            throw;
        }
        return Transcript();
    }

    private SessionTranscript Transcript() =>
        new(SessionId, state.State.Model, state.State.SystemPrompt, state.State.Turns.ToList(), state.State.Tokens.Count, state.State.CreatedAt,
            state.State.Defaults, state.State.ContextPolicy, state.State.ChatTemplate ?? ChatTemplate.Default);
}
