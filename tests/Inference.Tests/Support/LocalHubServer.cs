using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>
/// A real HTTP server on a free loopback port with the Hugging Face hub's URL layout
/// (<c>/{repo}/resolve/{revision}/{file}</c>), ETags holding sha256 as the hub's LFS files do, and Range support.
/// </summary>
public sealed class LocalHubServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Dictionary<string, string> _files; // "repo/file" → local path
    private readonly Task _loop;
    public string Endpoint { get; }
    public List<string> RangeRequests { get; } = [];
    public Func<string, string?>? EtagOverride { get; set; }
    /// <summary>How many of the next requests to drop mid-response (a flaky network).</summary>
    public int DropNextRequests { get; set; }

    public LocalHubServer(string repo, string folder)
    {
        _files = Directory.GetFiles(folder).ToDictionary(f => $"{repo}/resolve/main/{Path.GetFileName(f)}", f => f);
        int port = FreePort();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
            using var response = context.Response;
            if (!_files.TryGetValue(context.Request.Url!.AbsolutePath.TrimStart('/'), out var path))
            {
                response.StatusCode = 404;
                continue;
            }
            var bytes = await File.ReadAllBytesAsync(path);
            if (DropNextRequests > 0)
            {
                DropNextRequests--;
                response.ContentLength64 = bytes.Length;
                await response.OutputStream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
                response.Abort(); // the connection drops half-way
                continue;
            }
            response.Headers["ETag"] = "\"" + (EtagOverride?.Invoke(Path.GetFileName(path)) ?? Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant()) + "\"";
            long start = 0;
            if (context.Request.Headers["Range"] is { } range && range.StartsWith("bytes=", StringComparison.Ordinal))
            {
                RangeRequests.Add(Path.GetFileName(path));
                start = long.Parse(range["bytes=".Length..].TrimEnd('-'));
                response.StatusCode = 206;
                response.Headers["Content-Range"] = $"bytes {start}-{bytes.Length - 1}/{bytes.Length}";
            }
            response.ContentLength64 = bytes.Length - start;
            try { await response.OutputStream.WriteAsync(bytes.AsMemory((int)start)); }
            catch (HttpListenerException) { }
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
