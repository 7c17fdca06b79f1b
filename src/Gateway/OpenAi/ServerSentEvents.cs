using System.Text.Json;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// OpenAI's streaming framing: <c>text/event-stream</c>, one <c>data: {json}</c> event per chunk, then <c>data: [DONE]</c>.
/// In a stream that asked for <c>stream_options.include_usage</c>, every chunk without a usage says <c>"usage": null</c>
/// (only the last has one), as OpenAI sends them; other streams have no usage field.
/// </summary>
public static class ServerSentEvents
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never };
    private const string NullUsageKey = "gpt2o.null-usage";

    public static void Start(HttpResponse response, bool includeUsage = false)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        response.HttpContext.Items[NullUsageKey] = includeUsage;
    }

    public static async Task WriteAsync(HttpResponse response, object chunk, CancellationToken cancellationToken)
    {
        string json;
        if (response.HttpContext.Items[NullUsageKey] is true)
        {
            var node = JsonSerializer.SerializeToNode(chunk, Json)!.AsObject();
            if (!node.ContainsKey("usage")) node["usage"] = null;
            json = node.ToJsonString(Json);
        }
        else json = JsonSerializer.Serialize(chunk, Json);
        await response.WriteAsync("data: " + json + "\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    public static async Task DoneAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        await response.WriteAsync("data: [DONE]\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }
}
