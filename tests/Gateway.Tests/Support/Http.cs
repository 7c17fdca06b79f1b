using System.Text;
using System.Text.Json;

namespace Gpt2Orleans.Gateway.Tests.Support;

/// <summary>JSON bodies and OpenAI-framed event streams, read and checked the same way by every HTTP test.</summary>
public static class Http
{
    public static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    public static async Task<JsonElement> ReadJson(HttpResponseMessage response) => JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    /// <summary>The data: payloads of an event stream, checked to be framed as OpenAI frames them (the final [DONE] left out).</summary>
    public static async Task<List<JsonElement>> ReadEvents(HttpResponseMessage response)
    {
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        string text = await response.Content.ReadAsStringAsync();
        var events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).ToList();
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        return events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
    }

    /// <summary>The error object of a failed response, checked to have OpenAI's shape and the expected status.</summary>
    public static async Task<JsonElement> ReadError(HttpResponseMessage response, System.Net.HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        var error = (await ReadJson(response)).GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.True(error.TryGetProperty("type", out _) && error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _));
        return error;
    }
}
