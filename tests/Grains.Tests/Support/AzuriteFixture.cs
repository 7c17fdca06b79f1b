namespace Gpt2Orleans.Grains.Tests.Support;

/// <summary>A real Azurite blob service (npm azurite) on a free loopback port, with its data in a temporary folder.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    // Azurite's well-known development account (public, documented by Microsoft).
    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private readonly string _location = Path.Combine(Path.GetTempPath(), "gpt2o-azurite-" + Guid.NewGuid().ToString("N"));
    private ServerProcess? _server;

    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AccountKey};BlobEndpoint=http://127.0.0.1:{_server!.Port}/devstoreaccount1;";

    public async Task InitializeAsync()
    {
        int port = ToolPaths.FreePort();
        _server = await ServerProcess.StartAsync(ToolPaths.AzuriteBlob,
            ["--blobHost", "127.0.0.1", "--blobPort", port.ToString(), "--location", _location, "--skipApiVersionCheck", "--disableTelemetry", "--silent"], port);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        try { Directory.Delete(_location, recursive: true); } catch (IOException) { }
    }
}
