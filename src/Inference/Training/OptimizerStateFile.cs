using System.Globalization;
using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>
/// AdamW's state as safetensors (<c>optimizer.safetensors</c>): <c>state.{i}.exp_avg</c> and <c>state.{i}.exp_avg_sq</c>
/// for the i-th parameter in the optimizer's order, each one's step count in the metadata. Our own file because
/// TorchSharp's <c>save_state_dict</c> refuses non-contiguous moments (they take their parameter's strides), and a
/// documented format is one other tools can read.
/// </summary>
public static class OptimizerStateFile
{
    public static void Save(TorchSharp.Modules.AdamW optimizer, string path)
    {
        var states = States(optimizer);
        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["optimizer"] = "AdamW", ["states"] = states.Count.ToString(CultureInfo.InvariantCulture) };
        for (int i = 0; i < states.Count; i++)
        {
            tensors[$"state.{i}.exp_avg"] = states[i].exp_avg;
            tensors[$"state.{i}.exp_avg_sq"] = states[i].exp_avg_sq;
            metadata[$"state.{i}.step"] = states[i].step.ToString(CultureInfo.InvariantCulture);
        }
        SafetensorsWriter.Save(path, tensors, metadata);
    }

    /// <summary>Copies the saved moments and step counts into <paramref name="optimizer"/>'s state, which must be for the same parameters.</summary>
    public static void Load(TorchSharp.Modules.AdamW optimizer, string path)
    {
        var states = States(optimizer);
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("states", out var count) || count != states.Count.ToString(CultureInfo.InvariantCulture))
            throw new CheckpointException($"{path}: holds the state of {count ?? "no"} parameters, this model has {states.Count}");
        using var noGrad = torch.no_grad();
        for (int i = 0; i < states.Count; i++)
        {
            foreach (var (name, target) in new[] { ("exp_avg", states[i].exp_avg), ("exp_avg_sq", states[i].exp_avg_sq) })
            {
                string key = $"state.{i}.{name}";
                if (!file.Tensors.TryGetValue(key, out var info) || !info.Shape.SequenceEqual(target.shape))
                    throw new CheckpointException($"{path}: {key} is missing or not shaped [{string.Join(", ", target.shape)}]");
                using var saved = file.ReadTensor(key, target.dtype, target.device);
                target.copy_(saved);
            }
            states[i].step = file.Metadata.TryGetValue($"state.{i}.step", out var step) && long.TryParse(step, CultureInfo.InvariantCulture, out long value) && value >= 0
                ? value : throw new CheckpointException($"{path}: state.{i}.step is missing or not a count");
        }
    }

    private static List<TorchSharp.Modules.AdamW.State> States(TorchSharp.Modules.AdamW optimizer) =>
        optimizer.state_dict().State.Cast<TorchSharp.Modules.AdamW.State>().ToList();
}
