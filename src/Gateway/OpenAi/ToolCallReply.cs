using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// One choice's reply read back as OpenAI's tool call while it streams: the function's name once its head is
/// complete, then the arguments' text as it grows, holding back the last character until the end (it may be the
/// closing <see cref="ToolCallText.Suffix"/>, which is not part of the arguments).
/// </summary>
public sealed class ToolCallReply(IReadOnlyList<string> names)
{
    public string Id { get; } = "call_" + Guid.NewGuid().ToString("N")[..24];
    public string? Name { get; private set; }
    public string Arguments { get; private set; } = "";
    private int _argumentsStart;

    /// <summary>Reads the reply's whole text so far; says whether the head just became known and which arguments text is new.</summary>
    public (bool HeadNow, string ArgumentsDelta) Update(string text, bool finished, bool complete)
    {
        bool headNow = false;
        if (Name is null)
        {
            if (!ToolCallText.TryReadHead(text, names, out var name, out _argumentsStart)) return (false, "");
            Name = name;
            headNow = true;
        }
        string arguments = complete ? ToolCallText.Arguments(text, _argumentsStart)
            : finished ? text[_argumentsStart..]
            : text[_argumentsStart..Math.Max(_argumentsStart, text.Length - ToolCallText.Suffix.Length)];
        string delta = arguments.Length > Arguments.Length ? arguments[Arguments.Length..] : "";
        Arguments = arguments;
        return (headNow, delta);
    }

    /// <summary>OpenAI's <c>tool_calls</c> entry of a whole reply, or null when the reply ended before naming its function.</summary>
    public object? Message() => Name is null ? null : new { id = Id, type = "function", function = new { name = Name, arguments = Arguments } };
}
