using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>HF's <c>GPT2PreTrainedModel</c>: a transformer plus a task head; parameters named as in HF checkpoints.</summary>
public abstract class Gpt2PreTrainedModel : nn.Module
{
    public readonly Gpt2Model transformer;

    public Gpt2Config Config => transformer.Config;
    public ScalarType DType => transformer.DType;

    public Device Device => transformer.Device;

    /// <summary>Checkpoint keys that are the same weights as another parameter (tied), so may be absent.</summary>
    public virtual IReadOnlyCollection<string> TiedKeys => [];

    protected Gpt2PreTrainedModel(string name, Gpt2Config config, ScalarType dtype, Device device) : base(name)
    {
        transformer = new Gpt2Model(config, dtype, device);
    }

    /// <summary>
    /// Writes config.json (with this head in <c>architectures</c> and the saved <c>torch_dtype</c>, as HF) and
    /// model.safetensors in HF's <c>save_pretrained</c> layout (tied lm_head omitted), in the model's dtype;
    /// <paramref name="dtype"/> converts on the way out.
    /// </summary>
    public void SavePretrained(string directory, ScalarType? dtype = null)
    {
        Directory.CreateDirectory(directory);
        var saved = Config with { Architectures = [GetName()], TorchDtype = DeviceSpec.DTypeName(dtype ?? DType) };
        File.WriteAllText(Path.Combine(directory, "config.json"), saved.ToJson());
        using var scope = torch.NewDisposeScope();
        var tensors = StateDict().Where(p => !TiedKeys.Contains(p.Key))
            .ToDictionary(p => p.Key, p => p.Value.to(dtype ?? p.Value.dtype).contiguous());
        SafetensorsWriter.Save(Path.Combine(directory, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Named parameters as a checkpoint would name them ("transformer.h.0.attn.c_attn.weight", "score.weight").</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict() =>
        named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
}
