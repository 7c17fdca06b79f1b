using System.Text.Json;
using System.Text.Json.Nodes;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>The functions a reply must call one of (<c>tools</c> with <c>tool_choice</c> required or naming one), as the engine's constraint.</summary>
public sealed record ToolChoice(IReadOnlyList<string> Names, ResponseConstraint Constraint)
{
    public const int MaxTools = 128;

    /// <summary>
    /// <c>tools</c> and <c>tool_choice</c>: "required" or a named function constrains the reply to a call; "none" ignores
    /// the tools. "auto" (OpenAI's default when tools are given) needs a model that decides for itself whether to
    /// call: GPT-2 has no tool format, so it is a 400 naming tool_choice. null: no call is asked for.
    /// </summary>
    public static ToolChoice? Parse(RequestFields fields)
    {
        var tools = fields.Get("tools");
        var choice = fields.Get("tool_choice");
        if (fields.Get("parallel_tool_calls") is { } parallel && parallel.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw RequestFields.Wrong("parallel_tool_calls", "a boolean");
        string? mode = choice is { ValueKind: JsonValueKind.String } text ? text.GetString() : null;
        if (tools is null or { ValueKind: JsonValueKind.Null } || tools is { ValueKind: JsonValueKind.Array } empty && empty.GetArrayLength() == 0)
        {
            if (choice is not null && mode is not ("none" or "auto"))
                throw ApiException.BadRequest("'tool_choice' names a tool, but no 'tools' are given", "tool_choice", "unsupported_parameter");
            return null;
        }
        var functions = ParseTools(tools.Value);
        if (mode == "none") return null;
        if (choice is null || mode == "auto")
            throw ApiException.BadRequest("'tool_choice' \"auto\" (the default with tools) lets the model decide whether to call a tool, and this model's chat template " +
                "has no tool format to decide with: send \"required\", a named function, or \"none\"", "tool_choice", "unsupported_parameter");
        List<(string Name, JsonElement? Parameters)> offered;
        if (mode == "required") offered = functions;
        else if (NamedFunction(choice.Value) is { } wanted)
        {
            offered = functions.Where(t => t.Name == wanted).ToList();
            if (offered.Count == 0) throw ApiException.BadRequest($"'tool_choice' names '{wanted}', which is not among the tools", "tool_choice");
        }
        else throw RequestFields.Wrong("tool_choice", "\"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":…}}");
        var source = new JsonArray(offered.Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Name,
            ["parameters"] = JsonNode.Parse(ToolCallText.ParametersOrEmpty(t.Parameters)),
        }).ToArray());
        return new ToolChoice(offered.Select(t => t.Name).ToList(), new ResponseConstraint("tool_call", source.ToJsonString(), "tools"));
    }

    /// <summary>The name in <c>{"type": "function", "function": {"name": …}}</c>, or null for any other shape.</summary>
    private static string? NamedFunction(JsonElement choice) =>
        choice.ValueKind == JsonValueKind.Object && choice.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object
        && f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;

    private static List<(string Name, JsonElement? Parameters)> ParseTools(JsonElement tools)
    {
        if (tools.ValueKind != JsonValueKind.Array) throw RequestFields.Wrong("tools", "an array of {\"type\":\"function\",\"function\":{…}}");
        if (tools.GetArrayLength() > MaxTools) throw ApiException.BadRequest($"'tools' holds more than {MaxTools} tools", "tools");
        var functions = new List<(string, JsonElement?)>();
        int i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            string at = $"tools[{i++}]";
            if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "function"
                || !tool.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest($"'{at}' must be {{\"type\":\"function\",\"function\":{{\"name\":…}}}}", "tools");
            if (!function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || !ToolCallText.IsValidName(name.GetString()!))
                throw ApiException.BadRequest($"'{at}.function.name' must be 1–64 letters, digits, '_' or '-'", "tools");
            if (functions.Any(f => f.Item1 == name.GetString()))
                throw ApiException.BadRequest($"'{at}.function.name' '{name.GetString()}' is given twice", "tools");
            JsonElement? parameters = null;
            if (function.TryGetProperty("parameters", out var p) && p.ValueKind != JsonValueKind.Null)
            {
                if (p.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest($"'{at}.function.parameters' must be a JSON Schema object", "tools");
                parameters = p;
            }
            functions.Add((name.GetString()!, parameters));
        }
        return functions;
    }
}
