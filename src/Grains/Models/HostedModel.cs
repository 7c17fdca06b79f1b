using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// A loaded model on this silo: weights, tokenizer and its engines: a <see cref="GenerationEngine"/> for a language
/// model (with its generation_config.json defaults), and for every model a <see cref="OnePassEngine"/> for
/// its one-pass requests (a classification head's, and embeddings, which any GPT-2 has).
/// </summary>
public sealed class HostedModel : IDisposable
{
    public const string LanguageModelHead = ModelHeads.LanguageModel;

    public HostedModel(string name, string source, Gpt2PreTrainedModel model, Gpt2Tokenizer tokenizer, GenerationConfig defaults,
        GenerationEngine? generation, OnePassEngine encoder)
    {
        Name = name;
        Source = source;
        Model = model;
        Tokenizer = tokenizer;
        Defaults = defaults;
        Generation = generation;
        Encoder = encoder;
        ParameterBytes = model.WeightBytes;
        Fingerprint = ModelFingerprint.Of(name, source, model);
        Head = ModelHeads.Of([model.GetName()]);
    }

    public string Name { get; }
    public string Source { get; }
    public Gpt2PreTrainedModel Model { get; }
    public Gpt2Tokenizer Tokenizer { get; }
    public GenerationConfig Defaults { get; }
    public GenerationEngine? Generation { get; }
    public OnePassEngine Encoder { get; }
    public long ParameterBytes { get; }
    public string Head { get; }

    /// <summary>
    /// What a spilled KV file must have been written by: the model's name, source and configuration, and for a
    /// folder the checkpoint files' sizes and times (new weights under the same name make old KV useless).
    /// </summary>
    public string Fingerprint { get; }

    /// <summary>Sequences running or waiting in its generation engine (none for a one-pass head).</summary>
    public int ActiveSequences => Generation is { Stats: var stats } ? stats.Running + stats.Waiting : 0;

    public GenerationEngine RequireGeneration() => Generation
        ?? throw new InvalidRequestException($"model '{Name}' has a {Head} head: it classifies, it does not generate", "model");

    public OnePassEngine RequireClassification() => Require("classify", ModelHeads.SequenceClassification, ModelHeads.TokenClassification);

    /// <summary>The one-pass engine, when the model has one of <paramref name="heads"/>; a 400 saying what it cannot <paramref name="task"/> otherwise.</summary>
    public OnePassEngine Require(string task, params string[] heads) => heads.Contains(Head) ? Encoder
        : throw new InvalidRequestException($"model '{Name}' has a {Head} head: it does not {task} (that needs a {string.Join(" or ", heads)} head)", "model");

    public void Dispose()
    {
        Generation?.Dispose();
        Encoder.Dispose();
        Model.Dispose();
    }
}
