using System.Runtime.CompilerServices;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// Where the model's parameters lie in memory (each block's, the embeddings', the final LayerNorm's), for the fused step (<see cref="CpuPagedStep"/>): found once per model
/// through libtorch and kept. Why: every libtorch call costs microseconds when its code and data are cold, which they
/// always are once a step has streamed the weights through the caches: the step's 96 parameter reads measured 17 µs
/// in a loop and 190 µs inside GPT-2 small's decode steps, and each product asked the weight's shape, dtype and memory
/// four times more. Kept while the model's tensors are the same objects (checked by reference each step, without
/// libtorch): a tensor replaced (moved, converted, quantized) is found again; values changed in place are read afresh
/// each step, from the same memory.
/// </summary>
internal sealed class FusedStepParameters
{
    private static readonly ConditionalWeakTable<Gpt2Model, FusedStepParameters> Cache = new();

    /// <summary>One block's: LayerNorms, biases, and the four products' dense [out, in] weights (null where quantized).</summary>
    internal sealed class Block(Gpt2Block block)
    {
        private readonly object?[] _sources = Sources(block);
        public readonly TensorMemory Ln1Weight = TensorMemory.Of(block.ln_1.weight), Ln1Bias = TensorMemory.Of(block.ln_1.bias),
            Ln2Weight = TensorMemory.Of(block.ln_2.weight), Ln2Bias = TensorMemory.Of(block.ln_2.bias),
            AttnBias = TensorMemory.Of(block.attn.c_attn.bias), AttnProjBias = TensorMemory.Of(block.attn.c_proj.bias),
            FcBias = TensorMemory.Of(block.mlp.c_fc.bias), MlpProjBias = TensorMemory.Of(block.mlp.c_proj.bias);
        public readonly TensorMemory? AttnWeight = Dense(block.attn.c_attn), AttnProjWeight = Dense(block.attn.c_proj),
            FcWeight = Dense(block.mlp.c_fc), MlpProjWeight = Dense(block.mlp.c_proj);

        /// <summary>Whether <paramref name="block"/> still holds the tensors (and quantized weights) this was made from.</summary>
        public bool Matches(Gpt2Block block) => SameObjects(Sources(block), _sources);

        private static object?[] Sources(Gpt2Block b) =>
        [
            b.ln_1.weight, b.ln_1.bias, b.ln_2.weight, b.ln_2.bias,
            b.attn.c_attn.bias, b.attn.c_proj.bias, b.mlp.c_fc.bias, b.mlp.c_proj.bias,
            b.attn.c_attn.WeightOutIn, b.attn.c_proj.WeightOutIn, b.mlp.c_fc.WeightOutIn, b.mlp.c_proj.WeightOutIn,
            b.attn.c_attn.Quantized, b.attn.c_proj.Quantized, b.mlp.c_fc.Quantized, b.mlp.c_proj.Quantized,
        ];

        private static TensorMemory? Dense(Conv1D projection) => projection.WeightOutIn is { } w ? TensorMemory.Of(w) : null;
    }

    private readonly Block[] _blocks;
    private readonly object?[] _sources;

    /// <summary>The token embedding's rows (null where it is quantized: its rows are dequantized), the positions', the final LayerNorm.</summary>
    public readonly TensorMemory? Wte;
    public readonly TensorMemory Wpe, LnFWeight, LnFBias;

    private FusedStepParameters(Gpt2Model model)
    {
        _blocks = [.. model.h.Select(b => new Block(b))];
        _sources = Sources(model);
        Wte = model.wte.weight is { } wte ? TensorMemory.Of(wte) : null;
        Wpe = TensorMemory.Of(model.wpe.DenseWeightOutIn);
        (LnFWeight, LnFBias) = (TensorMemory.Of(model.ln_f.weight), TensorMemory.Of(model.ln_f.bias));
    }

    private static object?[] Sources(Gpt2Model m) => [m.wte.weight, m.wte.Quantized, m.wpe.weight, m.ln_f.weight, m.ln_f.bias];

    public Block this[int layer] => _blocks[layer];

    /// <summary>The model's, found again if any of its blocks' tensors was replaced since.</summary>
    public static FusedStepParameters For(Gpt2Model model)
    {
        if (Cache.TryGetValue(model, out var known) && known._blocks.Length == model.h.Count && known.Matches(model)) return known;
        var found = new FusedStepParameters(model);
        Cache.AddOrUpdate(model, found);
        return found;
    }

    private bool Matches(Gpt2Model model)
    {
        if (!SameObjects(Sources(model), _sources)) return false;
        for (int layer = 0; layer < _blocks.Length; layer++) if (!_blocks[layer].Matches(model.h[layer])) return false;
        return true;
    }

    /// <summary>Whether the two lists hold the very same objects, in order (no libtorch call).</summary>
    private static bool SameObjects(object?[] now, object?[] then)
    {
        for (int i = 0; i < now.Length; i++) if (!ReferenceEquals(now[i], then[i])) return false;
        return true;
    }
}
