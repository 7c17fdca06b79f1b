using Gpt2Orleans.Inference.Model;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>
/// The model used when none is named: GPT-2 small's architecture (HF's default config, 124M parameters) with
/// the real vocabulary and randomly initialised weights (HF's initialisation, fixed seed), so it runs with no
/// download. Its output is fluent-looking nonsense: it has never been trained.
/// </summary>
public static class DefaultModel
{
    public const long Seed = 42;
    public const string Name = "gpt2-random";
    public const string Description = "default model: GPT-2 small architecture with RANDOM weights (HF initialisation, seed 42), not trained; its text is meaningless";

    public static Gpt2LMHeadModel Create(ModelLoadOptions? options = null) => Gpt2LMHeadModel.CreateRandom(Gpt2Config.Default, Seed, options);
}
