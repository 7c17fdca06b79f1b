using System.Net.Sockets;
using System.Text;

namespace Gpt2Orleans.Gateway.Tests.Support;

/// <summary>Bytes written to a real socket and the responses read back whole (ASCII bodies, by length or chunked), for requests no HTTP client would send.</summary>
public static class RawHttp
{
    public sealed record Response(string StatusLine, Dictionary<string, string> Headers, string Body)
    {
        public int Status => int.Parse(StatusLine.Split(' ')[1]);
    }

    /// <summary>Writes <paramref name="request"/> (pausing <paramref name="pause"/> before the end when given) and reads responses until the server closes.</summary>
    public static async Task<List<Response>> SendAsync(Uri server, string request, TimeSpan? pause = null, TimeSpan? timeout = null)
    {
        using var tcp = new TcpClient();
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        await tcp.ConnectAsync(server.Host, server.Port, deadline.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), deadline.Token);
        if (pause is { } wait) await Task.Delay(wait, deadline.Token);
        var received = new MemoryStream();
        var buffer = new byte[16384];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, deadline.Token)) > 0) received.Write(buffer, 0, read);
        }
        catch (IOException) { } // a reset after the last response
        return Parse(Encoding.UTF8.GetString(received.ToArray()));
    }

    private static List<Response> Parse(string text)
    {
        var responses = new List<Response>();
        while (text.Length > 0)
        {
            int headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            Assert.True(headEnd > 0, $"an incomplete response head: {text}");
            var lines = text[..headEnd].Split("\r\n");
            var headers = lines[1..].Select(l => l.Split(": ", 2)).ToDictionary(p => p[0], p => p[1], StringComparer.OrdinalIgnoreCase);
            string rest = text[(headEnd + 4)..];
            var body = new StringBuilder();
            if (headers.GetValueOrDefault("Transfer-Encoding") == "chunked")
            {
                int size;
                do
                {
                    int lineEnd = rest.IndexOf("\r\n", StringComparison.Ordinal);
                    size = Convert.ToInt32(rest[..lineEnd], 16);
                    body.Append(rest, lineEnd + 2, size);
                    rest = rest[(lineEnd + 2 + size + 2)..];
                } while (size > 0);
            }
            else
            {
                int length = int.Parse(headers.GetValueOrDefault("Content-Length", "0"));
                body.Append(rest, 0, length);
                rest = rest[length..];
            }
            responses.Add(new Response(lines[0], headers, body.ToString()));
            text = rest;
        }
        return responses;
    }
}
