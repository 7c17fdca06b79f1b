using System.CommandLine;
using System.Diagnostics;

namespace Gpt2Orleans.Cli;

/// <summary>
/// <c>gpt2o quantize --model DIR --to DIR2 --quantize int4</c>: writes a quantized checkpoint (config.json with
/// <c>quantization_config</c>, the levels and scales in model.safetensors, the tokenizer) that later loads without
/// quantizing again. The folder is written beside its destination and moved into place whole.
/// </summary>
public static class QuantizeCommand
{
    private static readonly Option<string> To = new("--to") { Description = "The folder to write (must not exist, or be empty)", Required = true };

    public static Command Create()
    {
        var command = new Command("quantize", "Write a checkpoint with int8, int4 or nf4 projections and LM head, which loads without re-quantizing");
        CommonOptions.AddTo(command);
        command.Add(To);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var quantization = CommonOptions.Quantization(parse)
            ?? throw new ArgumentException("--quantize: say int8, int4 or nf4 (the weights to write)", "quantize");
        string destination = Path.GetFullPath(parse.GetValue(To)!);
        if (Directory.Exists(destination) && Directory.EnumerateFileSystemEntries(destination).Any())
            throw new ArgumentException($"--to: {destination} already exists and is not empty");
        if (File.Exists(destination)) throw new ArgumentException($"--to: {destination} is a file");
        var clock = Stopwatch.StartNew();
        using var loaded = ModelLoader.LoadLanguageModel(parse);
        if (loaded.Model.Quantization is { } already && already != quantization)
            throw new ArgumentException($"--model: the checkpoint is already quantized ({already.Name}, groups of {already.GroupSize})");
        double loadSeconds = clock.Elapsed.TotalSeconds;

        string partial = destination.TrimEnd(Path.DirectorySeparatorChar) + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        loaded.Model.SavePretrained(partial);
        loaded.Tokenizer.SavePretrained(partial);
        if (loaded.Folder is { } source && File.Exists(Path.Combine(source, "generation_config.json")))
            File.Copy(Path.Combine(source, "generation_config.json"), Path.Combine(partial, "generation_config.json"));
        if (Directory.Exists(destination)) Directory.Delete(destination);
        Directory.Move(partial, destination);

        long bytes = new FileInfo(Path.Combine(destination, "model.safetensors")).Length;
        if (parse.GetValue(CommonOptions.Json))
        {
            JsonOutput.Write(new { output_dir = destination, quantization = quantization.Name, group_size = quantization.GroupSize, model_bytes = bytes, quantize_seconds = loadSeconds });
            return 0;
        }
        Console.Error.WriteLine($"[{loaded.Description}]");
        Console.WriteLine($"wrote {destination}: {quantization.Name} in groups of {quantization.GroupSize}, model.safetensors {bytes / 1e6:F1} MB (loaded and quantized in {loadSeconds:F1} s)");
        return 0;
    }
}
