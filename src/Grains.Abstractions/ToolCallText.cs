using System.Text.Json;

namespace Gpt2Orleans.Grains;

/// <summary>
/// How a model writes a tool call: <c>{"name": "NAME", "arguments": ARGUMENTS}</c>, the arguments a JSON object valid
/// against the function's parameters. GPT-2 has no tool format of its own; the engine constrains a reply to this
/// text, the gateway reads it back into OpenAI's <c>tool_calls</c>, and a past call in a conversation is rendered
/// the same way, so the model sees its own calls as it wrote them.
/// </summary>
public static class ToolCallText
{
    /// <summary>OpenAI's rule for function names; it also keeps them free of characters JSON would escape.</summary>
    public static bool IsValidName(string name) => name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    public static string Prefix(string name) => $"{{\"name\": \"{name}\", \"arguments\": ";
    public const string Suffix = "}";

    public static string Format(string name, string arguments) => Prefix(name) + arguments + Suffix;

    /// <summary>The function a (possibly unfinished) reply calls, once its name is complete, and where its arguments begin.</summary>
    public static bool TryReadHead(string text, IEnumerable<string> names, out string name, out int argumentsStart)
    {
        foreach (var candidate in names)
            if (text.StartsWith(Prefix(candidate), StringComparison.Ordinal))
            {
                name = candidate;
                argumentsStart = Prefix(candidate).Length;
                return true;
            }
        name = "";
        argumentsStart = 0;
        return false;
    }

    /// <summary>The arguments of a finished call: its text between the head and the suffix.</summary>
    public static string Arguments(string text, int argumentsStart) =>
        text.EndsWith(Suffix, StringComparison.Ordinal) && text.Length - Suffix.Length >= argumentsStart
            ? text[argumentsStart..^Suffix.Length] : text[argumentsStart..];

    /// <summary>A function's parameters schema, or an object without properties when it has none (OpenAI: an empty parameter list).</summary>
    public static string ParametersOrEmpty(JsonElement? parameters) =>
        parameters is { ValueKind: JsonValueKind.Object } p ? p.GetRawText() : "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";
}
