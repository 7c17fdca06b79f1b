using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.KvCache;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// HF's <c>GPT2Model</c>: token and position embeddings, <c>n_layer</c> blocks, final LayerNorm. Inference only
/// (dropout is the identity). Past keys/values are kept in a <see cref="KeyValueCache"/> that this call extends.
/// </summary>
public sealed class Gpt2Model : nn.Module
{
    public readonly Embedding wte;
    public readonly Embedding wpe;
    public readonly ModuleList<Gpt2Block> h;
    public readonly LayerNorm ln_f;

    public Gpt2Config Config { get; }
    public ScalarType DType { get; }
    public Device Device { get; }

    public Gpt2Model(Gpt2Config config, ScalarType dtype, Device device) : base("GPT2Model")
    {
        Config = config;
        DType = dtype;
        Device = device;
        wte = new Embedding(config.VocabSize, config.NEmbd, dtype, device);
        wpe = new Embedding(config.NPositions, config.NEmbd, dtype, device);
        h = new ModuleList<Gpt2Block>(Enumerable.Range(0, config.NLayer).Select(i => new Gpt2Block(config, i, dtype, device)).ToArray());
        ln_f = new LayerNorm(config.NEmbd, config.LayerNormEpsilon, dtype, device);
        RegisterComponents();
    }

    /// <param name="inputIds">(B, T) token ids.</param>
    /// <param name="attentionMask">(B, past+T) 1/0, or null when nothing is padded.</param>
    /// <param name="positionIds">(B, T), or null for past..past+T-1.</param>
    /// <param name="cache">past keys/values; extended by T positions.</param>
    public Gpt2ModelOutput forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KeyValueCache? cache = null, bool outputHiddenStates = false, bool outputAttentions = false)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = TrainingDropout.InferenceUnlessTraining(training);
        if (inputIds.dim() != 2) throw new ArgumentException($"input_ids must be (batch, length), got [{string.Join(", ", inputIds.shape)}]");
        long b = inputIds.size(0), t = inputIds.size(1);
        long past = cache?.Length ?? 0;
        if (t == 0) throw new ArgumentException("input_ids is empty: at least one token is needed");
        if (past + t > Config.NPositions)
            throw new ArgumentException($"sequence length {past + t} exceeds the model's n_positions ({Config.NPositions})");
        CheckRange(inputIds, Config.VocabSize, "input_ids", "token id", "vocabulary");
        if (cache is not null && cache.BatchSize != b)
            throw new ArgumentException($"the cache holds {cache.BatchSize} rows but input_ids has {b}");
        if (attentionMask is not null && (attentionMask.dim() != 2 || attentionMask.size(0) != b || attentionMask.size(1) != past + t))
            throw new ArgumentException($"attention_mask must be ({b}, {past + t}) covering past and new tokens, got [{string.Join(", ", attentionMask.shape)}]");

        var ids = inputIds.to(Device);
        var positions = positionIds is null
            ? torch.arange(past, past + t, dtype: ScalarType.Int64, device: Device).unsqueeze(0)
            : positionIds.to(Device);
        if (positionIds is not null) CheckRange(positions, Config.NPositions, "position_ids", "position", "position table");

        var hidden = TrainingDropout.Apply(wte.forward(ids).add_(wpe.forward(positions)), Config.EmbdPdrop, training); // (B, T, E)
        bool eager = outputAttentions || Config.ReorderAndUpcastAttn;
        using var mask = AttentionMask.Create(attentionMask, t, past, DType, Device, explicitBias: eager);
        cache?.EnsureCapacity((int)(past + t));

        var hiddenStates = outputHiddenStates ? new List<Tensor>() : null;
        var attentions = outputAttentions ? new List<Tensor>() : null;
        foreach (var block in h)
        {
            hiddenStates?.Add(hidden);
            hidden = block.forward(hidden, mask, cache, outputAttentions, out var weights);
            if (outputAttentions) attentions!.Add(weights!);
        }
        cache?.Advance((int)t);
        hidden = ln_f.forward(hidden);
        hiddenStates?.Add(hidden);

        hidden.MoveToOuterDisposeScope();
        foreach (var s in hiddenStates?.SkipLast(1) ?? []) s.MoveToOuterDisposeScope(); // the last one is `hidden`
        foreach (var a in attentions ?? []) a.MoveToOuterDisposeScope();
        return new Gpt2ModelOutput(hidden, hiddenStates, attentions);
    }

    /// <summary>
    /// A paged forward pass: the new tokens (N) of several sequences as one flat batch, so projections and MLP run
    /// as single matrix products over all of them; attention reads and writes K/V in <paramref name="pool"/>.
    /// Returns the final hidden states (N, E).
    /// </summary>
    internal Tensor forwardPaged(Tensor tokenIds, PagedBatch batch, KvBlockPool pool, KernelPolicy policy)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        if (tokenIds.dim() != 1 || tokenIds.size(0) != batch.TokenCount)
            throw new ArgumentException($"token ids must be a flat vector of the batch's {batch.TokenCount} tokens");
        if (batch.Sequences.Any(s => s.TotalLength > Config.NPositions))
            throw new ArgumentException($"a sequence exceeds the model's n_positions ({Config.NPositions})");
        if (CpuPagedStep.Applies(this, batch, pool, policy)) return CpuPagedStep.Forward(this, tokenIds, batch, pool, policy).MoveToOuterDisposeScope();
        CheckRange(tokenIds, Config.VocabSize, "input_ids", "token id", "vocabulary");
        var hidden = wte.forward(tokenIds.to(Device)).add_(wpe.forward(batch.Positions)); // (N, E)
        foreach (var block in h) hidden = block.forwardPaged(hidden, batch, pool, policy);
        return ln_f.forward(hidden).MoveToOuterDisposeScope();
    }

    private static void CheckRange(Tensor values, long limit, string argument, string what, string table)
    {
        if (values.numel() == 0) return;
        CheckRange(values.min().item<long>(), values.max().item<long>(), limit, argument, what, table);
    }

    /// <summary>Refuses ids outside [0, <paramref name="limit"/>), naming the smallest if negative, else the largest.</summary>
    internal static void CheckRange(long min, long max, long limit, string argument, string what, string table)
    {
        if (min < 0 || max >= limit)
            throw new ArgumentOutOfRangeException(argument, $"{what} {(min < 0 ? min : max)} is outside the {table} (0..{limit - 1})");
    }
}
