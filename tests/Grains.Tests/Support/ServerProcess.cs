using System.Diagnostics;
using System.Text;

namespace Gpt2Orleans.Grains.Tests.Support;

/// <summary>A real server started by a test on a free loopback port, its output kept for error messages, killed on dispose.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    public int Port { get; }

    private ServerProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public string Log { get { lock (_log) return _log.ToString(); } }

    public static async Task<ServerProcess> StartAsync(string fileName, IEnumerable<string> arguments, int port, TimeSpan? startTimeout = null,
        string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        var process = new Process { StartInfo = info };
        var server = new ServerProcess(process, port);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try { await ToolPaths.WaitForPort(port, startTimeout ?? TimeSpan.FromSeconds(30), process, () => server.Log); }
        catch { await server.DisposeAsync(); throw; }
        return server;
    }

    /// <summary>SIGKILL: the process gets no chance to clean up (a crash, as far as the cluster can tell).</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    public bool HasExited => _process.HasExited;

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
        _process.Dispose();
    }
}
