using System.Diagnostics;
using System.Text.Json;

namespace Gpt2Orleans.Cli.Tests;

/// <summary>Runs the real <c>gpt2o</c> (the built assembly, under <c>dotnet</c>) as a separate process, bounded in time.</summary>
public static class CliRunner
{
    public static string Golden(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Golden", .. parts]);

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public JsonElement Json => JsonDocument.Parse(Stdout).RootElement;
    }

    public static async Task<Result> RunAsync(IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "gpt2o.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try { await process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw new TimeoutException($"gpt2o {string.Join(' ', args)} did not finish in 2 minutes"); }
        return new Result(process.ExitCode, await stdout, await stderr);
    }
}
