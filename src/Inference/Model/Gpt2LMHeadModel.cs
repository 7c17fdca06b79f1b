using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.KvCache;
using Gpt2Orleans.Inference.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>Logits (B, T or 1, V), the shifted LM loss when labels were given, and the transformer's outputs.</summary>
public sealed record CausalLMOutput(Tensor Logits, Tensor? Loss, Gpt2ModelOutput Transformer) : IDisposable
{
    public void Dispose() { Logits.Dispose(); Loss?.Dispose(); Transformer.Dispose(); }
}

/// <summary>HF's <c>GPT2LMHeadModel</c>: the transformer and an LM head tied to <c>wte</c> (unless the config unties it).</summary>
public sealed class Gpt2LMHeadModel : Gpt2PreTrainedModel
{
    public readonly Linear? lm_head; // only when tie_word_embeddings is false; otherwise wte.weight is used

    public Gpt2LMHeadModel(Gpt2Config config, ScalarType dtype, Device device) : base("GPT2LMHeadModel", config, dtype, device)
    {
        if (!config.TieWordEmbeddings) lm_head = new Linear(config.NEmbd, config.VocabSize, hasBias: false, dtype, device);
        RegisterComponents();
    }

    /// <summary>Loads a Hugging Face folder (config.json + model.safetensors).</summary>
    public static Gpt2LMHeadModel FromPretrained(string directory, ModelLoadOptions? options = null) =>
        PretrainedLoader.Load(directory, options, (config, dtype, device) => new Gpt2LMHeadModel(config, dtype, device));

    /// <summary>A model with HF's random initialisation, deterministic for <paramref name="seed"/> (no download needed).</summary>
    public static Gpt2LMHeadModel CreateRandom(Gpt2Config config, long seed, ModelLoadOptions? options = null) =>
        Gpt2Initializer.CreateRandom(config, seed, options, (c, dtype, device) => new Gpt2LMHeadModel(c, dtype, device));

    public override IReadOnlyCollection<string> TiedKeys => Config.TieWordEmbeddings ? ["lm_head.weight"] : [];

    /// <summary>The output embedding's module: lm_head, or the tied input embedding.</summary>
    private IQuantizable LmHead => lm_head is null ? transformer.wte : lm_head;

    /// <summary>The output embedding: lm_head's weight, or the tied input embedding (dense models only).</summary>
    public Tensor LmHeadWeight => LmHead.DenseWeightOutIn;

    /// <summary>The blocks' projections and the LM head (for a tied one, <c>wte</c>, whose lookup then dequantizes its rows).</summary>
    protected override IEnumerable<(string Name, IQuantizable Module)> QuantizableModules() =>
        base.QuantizableModules().Append(lm_head is null ? ("transformer.wte", transformer.wte) : ("lm_head", lm_head));

    /// <summary>Paged forward pass; logits (R, V) for the flat-batch rows in <paramref name="logitRows"/> (each sequence's last new token, say).</summary>
    internal Tensor forwardPaged(Tensor tokenIds, PagedBatch batch, KvBlockPool pool, long[] logitRows, KernelPolicy? policy = null)
    {
        policy ??= KernelPolicy.Fast;
        using var hidden = transformer.forwardPaged(tokenIds, batch, pool, policy);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var rows = hidden.index_select(0, torch.tensor(logitRows, device: hidden.device));
        return Project(rows, policy).MoveToOuterDisposeScope();
    }

    /// <param name="lastPositionOnly">compute logits for the last position only (what generation needs; saves T−1 vocab projections).</param>
    public CausalLMOutput forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KeyValueCache? cache = null,
        Tensor? labels = null, bool outputHiddenStates = false, bool outputAttentions = false, bool lastPositionOnly = false)
    {
        var output = transformer.forward(inputIds, attentionMask, positionIds, cache, outputHiddenStates, outputAttentions);
        using var scope = torch.NewDisposeScope();
        using var noGrad = TrainingDropout.InferenceUnlessTraining(training);
        var hidden = lastPositionOnly ? output.LastHiddenState.narrow(1, output.LastHiddenState.shape[1] - 1, 1) : output.LastHiddenState;
        var logits = Project(hidden, KernelPolicy.Dense);                                        // (B, T, V)
        var loss = labels is null ? null : Losses.ShiftedCrossEntropy(logits, labels);
        return new CausalLMOutput(logits.MoveToOuterDisposeScope(), loss?.MoveToOuterDisposeScope(), output);
    }

    /// <summary>The dense forward's LM head: final hidden states (…, E) to vocabulary logits (…, V), with autograd while training.</summary>
    public Tensor Logits(Tensor hidden) => Project(hidden, KernelPolicy.Dense);

    /// <summary>Hidden states (…, E) to vocabulary logits (…, V) through the (tied) LM head, as <paramref name="policy"/> says.</summary>
    private Tensor Project(Tensor hidden, KernelPolicy policy)
    {
        if (LmHead.Quantized is { } quantized) return QuantizedProjection.Apply(quantized, hidden, null, policy);
        var weight = LmHead.DenseWeightOutIn;
        if (policy.UsesMatVec(hidden, weight)) return CpuMatVec.Apply(hidden, weight, null);
        return SlicedFloat32Linear.Serves(hidden, weight)
            ? SlicedFloat32Linear.Dense(hidden, weight, null, policy.MinRows)
            : BatchInvariantMatmul.Linear(hidden, weight, policy.MinRows);
    }
}
