using System.CommandLine;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using Spectre.Console;

namespace Gpt2Orleans.Cli;

/// <summary>Turns <c>--model</c> into a loaded model: a local folder, a hub repo id (downloaded with a progress bar), or the default model.</summary>
public static class ModelLoader
{
    /// <param name="Folder">the checkpoint folder, or null for the default model</param>
    public sealed record Loaded<T>(T Model, Gpt2Tokenizer Tokenizer, string Description, string? Folder) : IDisposable where T : Gpt2PreTrainedModel
    {
        public void Dispose() => Model.Dispose();
    }

    public static Loaded<Gpt2LMHeadModel> LoadLanguageModel(ParseResult parse)
    {
        if (parse.GetValue(CommonOptions.Model) is null)
            return new(DefaultModel.Create(LoadOptions(parse)), Gpt2Tokenizer.Default, DefaultModel.Description, null);
        return Load(parse, Gpt2LMHeadModel.FromPretrained);
    }

    public static Loaded<T> Load<T>(ParseResult parse, Func<string, ModelLoadOptions, T> fromPretrained) where T : Gpt2PreTrainedModel
    {
        string spec = parse.GetValue(CommonOptions.Model)
            ?? throw new ArgumentException("--model: this command needs a checkpoint with the matching head (a folder or hub repo id)");
        string folder = ResolveFolder(spec, parse.GetValue(CommonOptions.Json));
        if (!File.Exists(Path.Combine(folder, "vocab.json")))
            Console.Error.WriteLine($"[{folder} has no vocab.json/merges.txt: using the bundled GPT-2 vocabulary]");
        return new(fromPretrained(folder, LoadOptions(parse)), Gpt2Tokenizer.FromDirectory(folder), folder, folder);
    }

    public static ModelLoadOptions LoadOptions(ParseResult parse) => new()
    {
        Device = parse.GetValue(CommonOptions.Device)!,
        DType = DeviceSpec.ParseDType(parse.GetValue(CommonOptions.DType)),
        Quantization = CommonOptions.Quantization(parse),
        Log = line => Console.Error.WriteLine(line),
    };

    /// <summary>A local folder as it is; a hub repo id downloaded (with a progress bar unless <paramref name="quiet"/>) into the cache.</summary>
    public static string ResolveFolder(string spec, bool quiet)
    {
        if (Directory.Exists(spec)) return spec;
        if (!HubDownloader.IsRepoId(spec))
            throw new ArgumentException($"--model: '{spec}' is neither an existing folder nor a Hugging Face repo id");
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
        var hub = new HubDownloader(http, HubDownloader.DefaultEndpoint, HubDownloader.DefaultCacheRoot);
        if (quiet) return hub.DownloadAsync(spec).GetAwaiter().GetResult();

        var console = CliConsole.Error;
        return console.Progress().AutoClear(false).Start(context =>
        {
            var tasks = new Dictionary<string, ProgressTask>();
            var progress = new SynchronousProgress<DownloadProgress>(p =>
            {
                if (!tasks.TryGetValue(p.File, out var task))
                    tasks[p.File] = task = context.AddTask(p.File, maxValue: p.BytesTotal ?? 1);
                if (p.BytesTotal is { } total) { task.MaxValue = total; task.Value = p.BytesDone; }
                else task.IsIndeterminate = true;
            });
            return hub.DownloadAsync(spec, progress: progress).GetAwaiter().GetResult();
        });
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool and race the bar).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
