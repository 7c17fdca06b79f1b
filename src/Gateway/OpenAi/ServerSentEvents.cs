using System.Text.Json;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>OpenAI's streaming framing: <c>text/event-stream</c>, one <c>data: {json}</c> event per chunk, then <c>data: [DONE]</c>.</summary>
public static class ServerSentEvents
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never };

    public static void Start(HttpResponse response)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
    }

    public static async Task WriteAsync(HttpResponse response, object chunk, CancellationToken cancellationToken)
    {
        await response.WriteAsync("data: " + JsonSerializer.Serialize(chunk, Json) + "\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    public static async Task DoneAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        await response.WriteAsync("data: [DONE]\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }
}
