using System.Net.Http.Headers;
using Gpt2Orleans.Silo;
using Microsoft.AspNetCore.Builder;

namespace Gpt2Orleans.Gateway.Tests.Support;

/// <summary>
/// The real single-machine app, in this process: a silo serving the golden tiny model as "alpha" with the gateway
/// co-hosted on Kestrel at a free loopback port, files under a temporary folder, and a known development key.
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public const string Key = "g2o-test-key-0123456789";
    public const string Model = "alpha";
    public static readonly string ModelFolder = Path.Combine(AppContext.BaseDirectory, "Models", "alpha");
    private readonly string _data = Path.Combine(Path.GetTempPath(), "gpt2o-gateway-" + Guid.NewGuid().ToString("N"));
    private WebApplication _app = null!;
    public Uri BaseAddress { get; private set; } = null!;
    public IServiceProvider Services => _app.Services;

    public HttpClient Client(string? key = Key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public async Task InitializeAsync()
    {
        int http = FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{http}");
        _app = SiloApp.Build([
            "--model", $"{Model}={ModelFolder}", "--data", _data, "--kv-cache-mb", "16",
            "--silo-port", FreePort().ToString(), "--gateway-port", FreePort().ToString(),
            "--urls", BaseAddress.ToString(), "--GPT2O_API_KEY", Key,
        ]);
        await _app.StartAsync();
        using var client = Client();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!(await client.GetAsync("/v1/models")).IsSuccessStatusCode) // the development key is registered once the silo is up
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the gateway did not accept the development key");
            await Task.Delay(100);
        }
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}

[CollectionDefinition(Name)]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>
{
    public const string Name = "gateway";
}
