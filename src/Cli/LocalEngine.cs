using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Cli;

/// <summary>
/// The engine for one command-line job: the same engine a silo runs (so the CLI and the API give the same text), with
/// a KV pool sized to what the job's prompts can need rather than a server's default.
/// </summary>
public static class LocalEngine
{
    private const int BlockSize = 16;

    /// <param name="kvDType">the KV cache's dtype (null: the model's)</param>
    public static GenerationEngine For(Gpt2LMHeadModel model, Gpt2Tokenizer tokenizer, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationConfig config,
        TorchSharp.torch.ScalarType? kvDType = null)
    {
        int width = config.IsBeamSearch ? config.NumBeams : config.NumReturnSequences;
        int context = model.Config.NPositions;
        // Each sequence at most fills the context; one more block each for a copy-on-write of a shared last block.
        long blocks = prompts.Sum(p => (long)width * (Blocks(Math.Min(context, Math.Max(1, p.Count) + config.MaxNewTokensFor(p.Count, context))) + 1));
        return new GenerationEngine(model, tokenizer, new EngineOptions
        {
            ModelName = "local",
            BlockSize = BlockSize,
            KvDType = kvDType,
            KvBlocks = (int)Math.Clamp(blocks, 1, int.MaxValue),
            MaxRunningSequences = Math.Max(1, prompts.Count * width),
        });
    }

    /// <summary>For scoring one text: its blocks only.</summary>
    public static GenerationEngine ForScoring(Gpt2LMHeadModel model, Gpt2Tokenizer tokenizer, int tokens, TorchSharp.torch.ScalarType? kvDType = null) =>
        new(model, tokenizer, new EngineOptions { ModelName = "local", BlockSize = BlockSize, KvDType = kvDType, KvBlocks = Blocks(Math.Max(1, tokens)) + 1 });

    private static int Blocks(int tokens) => (tokens + BlockSize - 1) / BlockSize;
}
