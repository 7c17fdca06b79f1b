using Gpt2Orleans.Tests.Shared;

namespace Gpt2Orleans.Grains.Tests.Support;

/// <summary>Where the real servers the tests start live: tests/tools/node_modules (npm, installed by ./test.sh) and Debian's /usr/bin.</summary>
public static class ToolPaths
{
    public static string AzuriteBlob => Repository.Require(Path.Combine(Repository.Tools, "node_modules", ".bin", "azurite-blob"), "run ./test.sh (it runs npm ci in tests/tools)");

    public static string RedisServer => Repository.Require("/usr/bin/redis-server", "run ./test.sh (it installs Debian's redis-server)");

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task WaitForPort(int port, TimeSpan timeout, System.Diagnostics.Process process, Func<string> log)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"{process.StartInfo.FileName} exited ({process.ExitCode}): {log()}");
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return;
            }
            catch (System.Net.Sockets.SocketException) { await Task.Delay(100); }
        }
        throw new TimeoutException($"{process.StartInfo.FileName} did not listen on port {port} within {timeout}: {log()}");
    }
}
