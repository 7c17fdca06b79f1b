using System.Text.Json;
using System.Text.Json.Nodes;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Training;

/// <summary>
/// A <c>checkpoint-N/</c> folder, as HF's Trainer writes one: the model in <c>save_pretrained</c> layout with its
/// tokenizer, the optimizer's state (<c>optimizer.safetensors</c>), the schedule's position
/// (<c>scheduler.json</c>), libtorch's generator state (<c>rng_state.bin</c>, the dropout masks to come) and
/// <c>trainer_state.json</c>. Written into a <c>.partial</c> folder and renamed, so a crash never leaves half a checkpoint.
/// </summary>
public static class TrainerCheckpoint
{
    public const string Prefix = "checkpoint-";

    /// <summary>What <c>trainer_state.json</c> records: the step reached, the data it was trained on, and the log so far.</summary>
    public sealed record State(int GlobalStep, int MaxSteps, int TrainExamples, JsonArray LogHistory);

    public static string Save(string outputDir, TrainingTask task, Gpt2PreTrainedModel model, Gpt2Tokenizer tokenizer,
        TorchSharp.Modules.AdamW optimizer, State state, int? saveTotalLimit)
    {
        string final = Path.Combine(outputDir, Prefix + state.GlobalStep), partial = final + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        task.SavePretrained(model, tokenizer, partial);
        OptimizerStateFile.Save(optimizer, Path.Combine(partial, "optimizer.safetensors"));
        File.WriteAllText(Path.Combine(partial, "scheduler.json"), new JsonObject { ["last_epoch"] = state.GlobalStep }.ToJsonString());
        using (var rng = torch.random.get_rng_state()) File.WriteAllBytes(Path.Combine(partial, "rng_state.bin"), rng.bytes.ToArray());
        var json = new JsonObject
        {
            ["global_step"] = state.GlobalStep, ["max_steps"] = state.MaxSteps, ["train_examples"] = state.TrainExamples,
            ["log_history"] = state.LogHistory.DeepClone(),
        };
        File.WriteAllText(Path.Combine(partial, "trainer_state.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
        Directory.Move(partial, final);
        if (saveTotalLimit is { } limit)
            foreach (var old in List(outputDir).SkipLast(limit)) Directory.Delete(old.Path, recursive: true);
        return final;
    }

    /// <summary>Restores the optimizer's state and libtorch's generator from <paramref name="directory"/>; the model's weights are loaded with the model.</summary>
    public static State Restore(string directory, TorchSharp.Modules.AdamW optimizer)
    {
        string Need(string name)
        {
            string path = Path.Combine(directory, name);
            return File.Exists(path) ? path : throw new ArgumentException($"'{directory}' is not a training checkpoint: it has no {name}", "resume_from_checkpoint");
        }
        State state;
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(Need("trainer_state.json")))?.AsObject() ?? throw new FormatException("it is null");
            int Field(string name) => json[name] is JsonValue value && value.TryGetValue(out int n) ? n : throw new FormatException($"{name} is missing or not an integer");
            state = new State(Field("global_step"), Field("max_steps"), Field("train_examples"),
                json["log_history"]?.AsArray() is { } history ? history.DeepClone().AsArray() : []);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new ArgumentException($"'{directory}': trainer_state.json is not a trainer state: {e.Message}", "resume_from_checkpoint");
        }
        try { OptimizerStateFile.Load(optimizer, Need("optimizer.safetensors")); }
        catch (CheckpointException e) { throw new ArgumentException($"'{directory}': the optimizer's state does not fit this model: {e.Message}", "resume_from_checkpoint"); }
        var bytes = File.ReadAllBytes(Need("rng_state.bin"));
        using (var current = torch.random.get_rng_state())
        {
            if (bytes.Length != current.numel()) throw new ArgumentException($"'{directory}': rng_state.bin holds {bytes.Length} bytes, libtorch's generator {current.numel()}", "resume_from_checkpoint");
            using var saved = torch.tensor(bytes, ScalarType.Byte);
            torch.random.set_rng_state(saved);
        }
        return state;
    }

    /// <summary>The checkpoint folders under <paramref name="outputDir"/>, oldest (lowest step) first.</summary>
    public static IReadOnlyList<(int Step, string Path)> List(string outputDir) =>
        !Directory.Exists(outputDir) ? [] : Directory.GetDirectories(outputDir, Prefix + "*")
            .Select(d => (Ok: int.TryParse(Path.GetFileName(d)[Prefix.Length..], out int step), Step: step, Path: d))
            .Where(c => c.Ok).OrderBy(c => c.Step).Select(c => (c.Step, c.Path)).ToList();
}
