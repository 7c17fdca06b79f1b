namespace Gpt2Orleans.Gateway.Playground;

/// <summary>
/// <c>GET /</c>: the playground, a chat page in plain HTML, CSS and JavaScript (no build step). The files are
/// embedded in this assembly, so the page comes with the gateway wherever it runs (standalone or in a silo).
/// </summary>
public static class PlaygroundEndpoints
{
    private static readonly (string Route, string File, string ContentType)[] Files =
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/playground.css", "playground.css", "text/css; charset=utf-8"),
        ("/playground.js", "playground.js", "text/javascript; charset=utf-8"),
    ];

    public static void Map(IEndpointRouteBuilder routes)
    {
        foreach (var (route, file, contentType) in Files)
        {
            byte[] content = Read(file);
            routes.MapGet(route, () => Results.Bytes(content, contentType)).ExcludeFromDescription();
        }
    }

    private static byte[] Read(string file)
    {
        using var stream = typeof(PlaygroundEndpoints).Assembly.GetManifestResourceStream($"Playground/{file}")
            ?? throw new InvalidOperationException($"the playground file {file} is not embedded in the gateway");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}
