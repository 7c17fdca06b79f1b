using System.Net.Http.Headers;

namespace Gpt2Orleans.Cli.Benchmark;

/// <summary>What the benchmarks that start the single-machine app in this process share: free loopback ports, and waiting until it takes their key.</summary>
public static class BenchSilo
{
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static HttpClient Client(Uri url, string key)
    {
        var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(5) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    /// <summary>Waits until the gateway accepts <paramref name="key"/> (the development key is registered once the silo is up).</summary>
    public static async Task WaitForKey(Uri url, string key)
    {
        using var http = Client(url, key);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!(await http.GetAsync("/v1/models")).IsSuccessStatusCode)
        {
            if (DateTime.UtcNow > deadline) throw new InvalidOperationException("the gateway did not accept the benchmark key within 60 s");
            await Task.Delay(100);
        }
    }
}
