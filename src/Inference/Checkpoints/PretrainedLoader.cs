using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Native;
using Gpt2Orleans.Inference.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>
/// Loads a Hugging Face GPT-2 folder into one of our models, the single strict place where checkpoint keys meet
/// parameter names. Both layouts load: <c>save_pretrained</c> (<c>transformer.h.0…</c>, tied <c>lm_head</c>
/// omitted) and the original hub file (<c>h.0…</c> with <c>attn.bias</c> mask buffers, which are not weights).
/// </summary>
public static partial class PretrainedLoader
{
    private static readonly string[] BaseModelPrefixes = ["wte.", "wpe.", "h.", "ln_f."];

    [GeneratedRegex(@"^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$")]
    private static partial Regex MaskBuffer();

    public static T Load<T>(string directory, ModelLoadOptions? options, Func<Gpt2Config, ScalarType, Device, T> create)
        where T : Gpt2PreTrainedModel
    {
        options ??= new ModelLoadOptions();
        TorchNativeLoader.EnsureLoaded(options.Log);
        if (!Directory.Exists(directory)) throw new CheckpointException($"{directory}: model folder not found");
        var config = Gpt2Config.FromFile(Path.Combine(directory, "config.json"));
        var device = DeviceSpec.Parse(options.Device);

        if (config.Quantization is { } saved && options.Quantization is { } asked && saved != asked)
            throw new CheckpointException($"{directory}: the checkpoint is quantized to {saved.Name} in groups of {saved.GroupSize}; it cannot be loaded as {asked.Name} in groups of {asked.GroupSize} (quantize the dense checkpoint instead)");
        using var weights = WeightFiles.Open(directory);
        var model = create(config, options.DType, device);
        try
        {
            if (config.Quantization is { } quantization) model.PrepareQuantized(quantization);
            LoadState(model, weights, options, directory);
            model.eval();
            if (config.Quantization is null && options.Quantization is { } requested) model.Quantize(requested);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The parameter name a checkpoint key refers to, or null for buffers HF ignores.</summary>
    public static string? ParameterName(string key)
    {
        if (MaskBuffer().IsMatch(key)) return null;
        return BaseModelPrefixes.Any(key.StartsWith) ? "transformer." + key : key;
    }

    private static void LoadState(Gpt2PreTrainedModel model, WeightFiles weights, ModelLoadOptions options, string directory)
    {
        var parameters = model.StateDict();
        var quantized = model.QuantizedWeights();
        var keyFor = new Dictionary<string, string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        var mismatched = new List<string>();
        var quantizedKeys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in weights.Names.Order(StringComparer.Ordinal))
        {
            var name = ParameterName(key);
            if (name is null || model.TiedKeys.Contains(name)) continue;
            if (QuantizedTarget(quantized, name) is not null) { quantizedKeys.Add(key); continue; }
            if (!parameters.TryGetValue(name, out var parameter)) { unexpected.Add(key); continue; }
            if (!keyFor.TryAdd(name, key)) throw new CheckpointException($"{directory}: both '{keyFor[name]}' and '{key}' hold {name}");
            var info = weights.Info(key);
            if (!info.Shape.SequenceEqual(parameter.shape))
                mismatched.Add($"{key}: checkpoint [{string.Join(", ", info.Shape)}], model [{string.Join(", ", parameter.shape)}]");
        }
        var missing = parameters.Keys.Where(n => !keyFor.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        LoadQuantized(quantized, weights, quantizedKeys, directory);

        string Report() => string.Join("; ", new[]
        {
            missing.Count > 0 ? $"missing keys: {List(missing)}" : null,
            unexpected.Count > 0 ? $"unexpected keys: {List(unexpected)}" : null,
            mismatched.Count > 0 ? $"size mismatch: {List(mismatched)}" : null,
        }.Where(s => s is not null));
        if (mismatched.Count > 0 || (options.Strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new CheckpointException($"{directory}: checkpoint does not match {model.GetName()}: {Report()}");
        if (missing.Count > 0 || unexpected.Count > 0)
            options.Log?.Invoke($"{directory}: loaded non-strictly into {model.GetName()}: {Report()} (missing parameters initialised as HF does)");

        using var noGrad = torch.no_grad();
        foreach (var (name, key) in keyFor)
        {
            var file = weights.FileOf(key);
            // A NaN or infinite weight makes every logit NaN: refuse the file here, naming the tensor, rather than
            // serve a model whose every request fails. The file's own values are checked where they lie; a narrowing
            // conversion (to float16) can overflow a finite value, so that case is checked after it.
            bool checkedInFile = !NarrowsRange(file.Tensors[key].DType, model.DType);
            if (checkedInFile && !file.AllFinite(key)) throw NonFinite(directory, key);
            using var source = file.ReadTensor(key, model.DType, model.Device);
            if (!checkedInFile)
                using (var finite = torch.isfinite(source).all())
                    if (!finite.item<bool>()) throw NonFinite(directory, key);
            parameters[name].copy_(source);
        }
        if (missing.Count > 0) Gpt2Initializer.Initialize(model, missing.ToHashSet(), seed: 0);
    }

    private static CheckpointException NonFinite(string directory, string key) => new($"{directory}: tensor '{key}' holds NaN or infinite values");

    /// <summary>Whether converting a file's <paramref name="fileDType"/> to <paramref name="target"/> can turn a finite value infinite (only float16 has a smaller range than the others).</summary>
    private static bool NarrowsRange(string fileDType, ScalarType target) => target == ScalarType.Float16 && fileDType != "F16";

    /// <summary>The quantized weight a parameter name's levels or scales belong to, or null.</summary>
    private static QuantizedWeight? QuantizedTarget(IReadOnlyDictionary<string, QuantizedWeight> quantized, string name) =>
        quantized.GetValueOrDefault(name) ?? (name.EndsWith(Gpt2PreTrainedModel.ScaleSuffix, StringComparison.Ordinal)
            ? quantized.GetValueOrDefault(name[..^Gpt2PreTrainedModel.ScaleSuffix.Length]) : null);

    /// <summary>
    /// Reads each quantized weight's levels (I8 or U8 [out, row bytes]) and scales (F32 [out, groups]), checking every
    /// dtype and shape first; a scale that is negative or not finite is refused, naming the tensor. All are required.
    /// </summary>
    private static void LoadQuantized(IReadOnlyDictionary<string, QuantizedWeight> quantized, WeightFiles weights, IReadOnlySet<string> keys, string directory)
    {
        if (quantized.Count == 0) return;
        var keyOf = keys.ToDictionary(k => ParameterName(k)!, StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var (name, q) in quantized)
        {
            string levelsDType = q.Type == QuantizationType.Int8 ? "I8" : "U8";
            Check(name, levelsDType, [q.OutFeatures, q.RowBytes]);
            Check(name + Gpt2PreTrainedModel.ScaleSuffix, "F32", [q.OutFeatures, q.GroupsPerRow]);
        }
        if (missing.Count > 0) throw new CheckpointException($"{directory}: quantized checkpoint is missing keys: {List(missing)}");
        foreach (var (name, q) in quantized)
        {
            // The file is row-major; the weight keeps its rows in the kernel's tiles.
            var levels = new byte[q.Data.Length];
            var scaleValues = new float[q.Scales.Length];
            weights.FileOf(keyOf[name]).ReadBytes(keyOf[name], levels);
            string scales = keyOf[name + Gpt2PreTrainedModel.ScaleSuffix];
            weights.FileOf(scales).ReadBytes(scales, MemoryMarshal.AsBytes(scaleValues.AsSpan()));
            if (QuantizedWeight.InvalidScale(scaleValues) is { } bad)
                throw new CheckpointException($"{directory}: tensor '{scales}' holds a scale of {bad}: scales must be finite and non-negative");
            q.SetRowMajor(levels, scaleValues);
        }

        void Check(string name, string dtype, long[] shape)
        {
            if (!keyOf.TryGetValue(name, out var key)) { missing.Add(name); return; }
            var info = weights.Info(key);
            if (info.DType != dtype || !info.Shape.SequenceEqual(shape))
                throw new CheckpointException($"{directory}: tensor '{key}' is {info.DType} [{string.Join(", ", info.Shape)}], a quantized weight here needs {dtype} [{string.Join(", ", shape)}]");
        }
    }

    private static string List(IReadOnlyList<string> items) =>
        string.Join(", ", items.Take(12)) + (items.Count > 12 ? $" … ({items.Count} in all)" : "");
}
