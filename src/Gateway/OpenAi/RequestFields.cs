using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// Typed reads of a JSON request body that answer a wrong type or range with a 400 naming the parameter, as
/// OpenAI does ("'temperature' must be a number between 0 and 2"). Absent and null fields read as null.
/// </summary>
public sealed class RequestFields(JsonElement body)
{
    /// <summary>
    /// The request's JSON body (bad JSON becomes a 400 in <see cref="Errors.ErrorHandling"/>), every string in it
    /// checked to be valid Unicode: System.Text.Json parses a lone surrogate (<c>"\ud800"</c>) or invalid UTF-8 and
    /// fails only when the string is read, deep inside a handler, which made such requests 500s.
    /// </summary>
    public static async Task<JsonElement> ReadBodyAsync(HttpContext context)
    {
        var body = await JsonSerializer.DeserializeAsync<JsonElement>(context.Request.Body, cancellationToken: context.RequestAborted);
        RequireValidText(body, "", null);
        return body;
    }

    /// <summary>Throws a 400 naming the first string (value or property name) that does not decode, and its top-level field.</summary>
    private static void RequireValidText(JsonElement element, string path, string? field)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                if (!Decodes(() => element.GetString())) throw InvalidText(path, field);
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    string? name = null;
                    if (!Decodes(() => name = property.Name)) throw InvalidText(path + ".<name>", field);
                    RequireValidText(property.Value, $"{path}.{name}", field ?? name);
                }
                break;
            case JsonValueKind.Array:
                int index = 0;
                foreach (var item in element.EnumerateArray()) RequireValidText(item, $"{path}[{index++}]", field);
                break;
        }
    }

    private static bool Decodes(Func<string?> read)
    {
        try { read(); return true; }
        catch (InvalidOperationException) { return false; } // System.Text.Json's answer to text it cannot transcode
    }

    private static ApiException InvalidText(string path, string? field) =>
        ApiException.BadRequest($"the string at ${path} is not valid Unicode (a lone surrogate or invalid UTF-8)", field, "invalid_text");

    public static RequestFields Parse(JsonElement body) =>
        body.ValueKind == JsonValueKind.Object ? new RequestFields(body) : throw ApiException.BadRequest("the request body must be a JSON object", null);

    public JsonElement? Get(string name) =>
        body.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string? String(string name) => Get(name) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(name, "a string")
        : null;

    public string RequiredString(string name) => String(name) is { Length: > 0 } s ? s : throw ApiException.BadRequest($"'{name}' is required", name);

    public bool? Bool(string name) => Get(name) is { } v
        ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Wrong(name, "a boolean")
        : null;

    public double? Number(string name, double min, double max) => Get(name) is { } v
        ? v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && d >= min && d <= max ? d : throw Wrong(name, $"a number between {min} and {max}")
        : null;

    /// <summary>A number in (0, <paramref name="max"/>]: top_p and repetition_penalty, where 0 means nothing.</summary>
    public double? PositiveNumber(string name, double max) => Get(name) is { } v
        ? v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && d > 0 && d <= max ? d : throw Wrong(name, $"a number greater than 0 and at most {max}")
        : null;

    public int? Integer(string name, int min, int max) => Get(name) is { } v
        ? v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i >= min && i <= max ? i : throw Wrong(name, $"an integer between {min} and {max}")
        : null;

    public long? Long(string name) => Get(name) is { } v
        ? v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : throw Wrong(name, "an integer")
        : null;

    /// <summary>OpenAI's <c>stream_options.include_usage</c>: whether a stream ends with a usage chunk.</summary>
    public bool IncludeUsage() => Get("stream_options") is { ValueKind: JsonValueKind.Object } options
        && options.TryGetProperty("include_usage", out var usage) && usage.ValueKind == JsonValueKind.True;

    /// <summary>A string or an array of up to <paramref name="max"/> strings (OpenAI's "stop").</summary>
    public IReadOnlyList<string>? Strings(string name, int max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() > max || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            throw Wrong(name, $"a string or an array of at most {max} strings");
        return v.EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    /// <summary>OpenAI's logit_bias: an object of token id (as a string) → bias between -100 and 100.</summary>
    public IReadOnlyDictionary<int, double>? LogitBias(string name, int vocabulary)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Object) throw Wrong(name, "an object of token id → bias");
        var bias = new Dictionary<int, double>();
        foreach (var p in v.EnumerateObject())
        {
            if (!int.TryParse(p.Name, out int id) || id < 0 || id >= vocabulary)
                throw ApiException.BadRequest($"'{name}' names token '{p.Name}', not a token id between 0 and {vocabulary - 1}", name);
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out var b) || b < -100 || b > 100)
                throw ApiException.BadRequest($"'{name}' bias for token {id} must be a number between -100 and 100", name);
            bias[id] = b;
        }
        return bias;
    }

    /// <summary>
    /// OpenAI and vLLM fields this server does not honour are a 400 naming each (code <c>unsupported_parameter</c>),
    /// never silently ignored: a client's helper would otherwise get a reply that does not do what it asked.
    /// (Structured outputs and tool calls are read by <see cref="StructuredOutputFields"/> and <see cref="ToolChoice"/>.)
    /// </summary>
    public void RefuseUnsupported()
    {
        foreach (var name in new[] { "audio", "modalities", "prediction", "functions", "function_call", "web_search_options", "guided_grammar" })
            if (Get(name) is not null) throw Unsupported(name, $"'{name}' is not supported by this server");
    }

    /// <summary>Tool calls belong to chat completions; elsewhere <c>tools</c> or <c>tool_choice</c> is a 400 saying <paramref name="why"/>.</summary>
    public void RefuseTools(string why)
    {
        foreach (var name in new[] { "tools", "tool_choice" })
            if (Get(name) is not null) throw Unsupported(name, $"tool calls are a chat completions feature: {why}");
    }

    private static ApiException Unsupported(string name, string message) => ApiException.BadRequest(message, name, "unsupported_parameter");

    public static ApiException Wrong(string name, string what) => ApiException.BadRequest($"'{name}' must be {what}", name);
}
