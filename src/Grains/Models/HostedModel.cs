using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Grains.Models;

/// <summary>A loaded model on this silo: weights, tokenizer, its generation_config.json defaults and its engine.</summary>
public sealed class HostedModel(string name, string source, Gpt2LMHeadModel model, Gpt2Tokenizer tokenizer, GenerationConfig defaults, GenerationEngine engine) : IDisposable
{
    public string Name { get; } = name;
    public string Source { get; } = source;
    public Gpt2LMHeadModel Model { get; } = model;
    public Gpt2Tokenizer Tokenizer { get; } = tokenizer;
    public GenerationConfig Defaults { get; } = defaults;
    public GenerationEngine Engine { get; } = engine;
    public long ParameterBytes { get; } = model.StateDict().Values.Sum(t => t.numel() * t.ElementSize);

    /// <summary>
    /// What a spilled KV file must have been written by: the model's name, source and configuration, and for a
    /// folder the checkpoint files' sizes and times (new weights under the same name make old KV useless).
    /// </summary>
    public string Fingerprint { get; } = ModelFingerprint.Of(name, source, model);

    public void Dispose()
    {
        Engine.Dispose();
        Model.Dispose();
    }
}
