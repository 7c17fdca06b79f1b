using System.Net.Http.Headers;
using Gpt2Orleans.Silo;
using Microsoft.AspNetCore.Builder;

namespace Gpt2Orleans.Gateway.Tests.Support;

/// <summary>
/// The real single-machine app, in this process: a silo serving the golden tiny models ("alpha", a language model;
/// "sentiment" and "tagger", classifiers) with the gateway co-hosted on Kestrel at a free loopback port, files under
/// a temporary folder, a known development key and a known admin key.
/// </summary>
public class GatewayFixture : IAsyncLifetime
{
    public const string Key = "g2o-test-key-0123456789";
    public const string AdminKey = "g2o-admin-key-0123456789";
    public const string Model = "alpha", Sentiment = "sentiment", Tagger = "tagger";
    public static readonly string ModelFolder = Path.Combine(AppContext.BaseDirectory, "Models", "alpha");
    public static string Folder(string model) => Path.Combine(AppContext.BaseDirectory, "Models", model);
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

    /// <summary>A new tenant made through the admin API (with <paramref name="quota"/> when given) and a client holding its first key.</summary>
    public async Task<HttpClient> NewTenantClient(object? quota = null)
    {
        using var admin = Client(AdminKey);
        string tenant = "t-" + Guid.NewGuid().ToString("N")[..12];
        var created = await admin.PostAsync("/admin/tenants", Http.Json(new { id = tenant, quota }));
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        var key = await Http.ReadJson(await admin.PostAsync($"/admin/tenants/{tenant}/keys", null));
        var client = Client(key.GetProperty("key").GetString());
        return client;
    }

    /// <summary>The --model arguments (and any other settings) the silo starts with.</summary>
    protected virtual IEnumerable<string> SiloArguments =>
        ["--model", $"{Model}={ModelFolder}", "--model", $"{Sentiment}={Folder(Sentiment)}", "--model", $"{Tagger}={Folder(Tagger)}"];

    /// <summary>Services added after the app's own (a test's trace exporter).</summary>
    protected virtual void ConfigureServices(Microsoft.Extensions.DependencyInjection.IServiceCollection services) { }

    public async Task InitializeAsync()
    {
        int http = FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{http}");
        _app = SiloApp.Build([
            .. SiloArguments,
            "--data", _data, "--kv-cache-mb", "16", "--batch-invariant", "true",
            "--silo-port", FreePort().ToString(), "--gateway-port", FreePort().ToString(),
            "--urls", BaseAddress.ToString(), "--GPT2O_API_KEY", Key, "--GPT2O_ADMIN_KEY", AdminKey,
        ], ConfigureServices);
        await _app.StartAsync();
        using var client = Client();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!(await client.GetAsync("/v1/models")).IsSuccessStatusCode) // the development key is registered once the silo is up
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the gateway did not accept the development key");
            await Task.Delay(100);
        }
    }

    public virtual async Task DisposeAsync()
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
