using System.Runtime.InteropServices;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Quantization;
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
    /// <remarks>
    /// A quantized model writes <c>quantization_config</c> and, for each quantized weight, <c>NAME.weight</c> (the
    /// levels: I8 [out, in] for int8, U8 [out, in ÷ 2] for int4, rows in blocks of 32 as <see cref="QuantizedWeight"/>
    /// describes, always [out, in], Conv1D's too) and <c>NAME.weight_scale</c> (F32 [out, groups]).
    /// </remarks>
    public void SavePretrained(string directory, ScalarType? dtype = null)
    {
        Directory.CreateDirectory(directory);
        var saved = Config with { Architectures = [GetName()], TorchDtype = DeviceSpec.DTypeName(dtype ?? DType), Quantization = Quantization };
        File.WriteAllText(Path.Combine(directory, "config.json"), saved.ToJson());
        using var scope = torch.NewDisposeScope();
        var tensors = StateDict().Where(p => !TiedKeys.Contains(p.Key))
            .ToDictionary(p => p.Key, p => p.Value.to(dtype ?? p.Value.dtype).contiguous());
        foreach (var (name, quantized) in QuantizedWeights())
            (tensors[name], tensors[name + ScaleSuffix]) = QuantizedTensors(quantized);
        SafetensorsWriter.Save(Path.Combine(directory, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Named parameters as a checkpoint would name them ("transformer.h.0.attn.c_attn.weight", "score.weight"); quantized weights are not parameters.</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict() =>
        named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    /// <summary>Bytes of every weight as stored: dense parameters in their dtype, quantized ones as levels and scales.</summary>
    public long WeightBytes => StateDict().Values.Sum(t => t.numel() * t.ElementSize) + QuantizedWeights().Values.Sum(q => q.Bytes);

    /// <summary>Weights in all, a quantized matrix counted as the values it stands for.</summary>
    public long ParameterCount => StateDict().Values.Sum(t => t.numel()) + QuantizedWeights().Values.Sum(q => (long)q.OutFeatures * q.InFeatures);

    /// <summary>What the weights are quantized to, or null while they are dense.</summary>
    public QuantizationConfig? Quantization { get; private set; }

    /// <summary>The checkpoint key of a quantized weight's scales: its weight's key plus this.</summary>
    public const string ScaleSuffix = "_scale";

    /// <summary>The weights quantization applies to: every projection of the blocks (heads add theirs, e.g. the LM head).</summary>
    protected virtual IEnumerable<(string Name, IQuantizable Module)> QuantizableModules() =>
        named_modules().Where(m => m.module is Conv1D && m.name.StartsWith("transformer.h.", StringComparison.Ordinal))
            .Select(m => (m.name, (IQuantizable)m.module));

    /// <summary>The quantized weights by checkpoint key ("transformer.h.0.attn.c_attn.weight").</summary>
    public IReadOnlyDictionary<string, QuantizedWeight> QuantizedWeights() =>
        QuantizableModules().Where(m => m.Module.Quantized is not null).ToDictionary(m => m.Name + ".weight", m => m.Module.Quantized!, StringComparer.Ordinal);

    /// <summary>Quantizes the projections (and the head's LM weight) as <paramref name="config"/> says, freeing their dense weights.</summary>
    public void Quantize(QuantizationConfig config)
    {
        if (Quantization is not null) throw new InvalidOperationException($"the model is already quantized ({Quantization.Name})");
        if (training) throw new InvalidOperationException("a model in training mode cannot be quantized");
        foreach (var (_, module) in QuantizableModules()) module.Quantize(config);
        Quantization = config;
        Native.FreedNativeMemory.ReturnToSystem(); // the dense weights just freed
    }

    /// <summary>Gives each quantizable weight zeroed levels and scales for a quantized checkpoint to fill (the loader's first step).</summary>
    internal void PrepareQuantized(QuantizationConfig config)
    {
        foreach (var (_, module) in QuantizableModules())
            module.Adopt(QuantizedWeight.Empty(config, module.WeightShape.Out, module.WeightShape.In));
        Quantization = config;
    }

    private static (Tensor Levels, Tensor Scales) QuantizedTensors(QuantizedWeight q)
    {
        var levels = torch.empty([q.OutFeatures, q.RowBytes], q.Type == QuantizationType.Int8 ? ScalarType.Int8 : ScalarType.Byte);
        var scales = torch.empty([q.OutFeatures, q.GroupsPerRow], ScalarType.Float32);
        q.CopyRowMajorTo(levels.bytes, MemoryMarshal.Cast<byte, float>(scales.bytes));
        return (levels, scales);
    }
}
