namespace Gpt2Orleans.Grains;

/// <summary>
/// GPT-2 has no chat format, so a conversation is rendered as plain text by a template that each model may set in
/// configuration (<c>Gpt2Orleans:ChatTemplates:MODEL</c>). The default renders
/// <code>
/// You are helpful.          ← System: "{content}\n"
/// User: Hi                  ← User: "User: {content}\n"
/// Assistant: Hello!         ← AssistantPrefix + " " + reply, then TurnEnd ("\n")
/// User: How are you?
/// Assistant:                ← AssistantPrefix: the model writes from here
/// </code>
/// and generation stops at <see cref="StopStrings"/> so the model does not write the user's turn; the stop text is
/// cut from the reply. Unless <see cref="Stop"/> says otherwise that is the start of the next user message, TurnEnd
/// plus User's text before {content} ("\nUser:").
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ChatTemplate
{
    public const string Content = "{content}";
    /// <summary>How long a reply may be when the request does not say (sessions and chat completions).</summary>
    public const int DefaultReplyTokens = 128;

    public static readonly ChatTemplate Default = new();

    /// <summary>How a system message is written; <c>{content}</c> is the message.</summary>
    [Id(0)] public string System { get; init; } = "{content}\n";
    /// <summary>How a user message is written.</summary>
    [Id(1)] public string User { get; init; } = "User: {content}\n";
    /// <summary>What opens the assistant's reply; a past reply follows it after a space.</summary>
    [Id(2)] public string AssistantPrefix { get; init; } = "Assistant:";
    /// <summary>What closes a finished reply before the next user message.</summary>
    [Id(3)] public string TurnEnd { get; init; } = "\n";
    /// <summary>Where generation stops by default; null: the start of the next user message.</summary>
    [Id(4)] public IReadOnlyList<string>? Stop { get; init; }
    /// <summary>How a tool's result (a <c>tool</c> message) is written.</summary>
    [Id(5)] public string Tool { get; init; } = "Tool: {content}\n";

    public IReadOnlyList<string> StopStrings => Stop ?? [TurnEnd + User[..Math.Max(0, User.IndexOf(Content, StringComparison.Ordinal))].TrimEnd()];

    /// <summary>Where a reply stops: the template's stop strings and the request's own.</summary>
    public IReadOnlyList<string> StopsWith(IReadOnlyList<string>? extra) => StopStrings.Concat(extra ?? []).Distinct().ToList();

    /// <summary>Throws <see cref="InvalidRequestException"/> naming the part that is wrong.</summary>
    public ChatTemplate Validate(string model)
    {
        foreach (var (name, part) in new[] { ("System", System), ("User", User), ("Tool", Tool) })
            if (part is null || !part.Contains(Content, StringComparison.Ordinal))
                throw new InvalidRequestException($"the chat template of model '{model}': {name} must contain {Content}", "chat_template");
        if (AssistantPrefix is null || TurnEnd is null)
            throw new InvalidRequestException($"the chat template of model '{model}': AssistantPrefix and TurnEnd must be strings", "chat_template");
        if (Stop is not null && (Stop.Count > 4 || Stop.Any(string.IsNullOrEmpty)) || StopStrings.Any(string.IsNullOrEmpty))
            throw new InvalidRequestException($"the chat template of model '{model}': Stop must hold up to 4 non-empty strings", "chat_template");
        return this;
    }

    public string SystemText(string systemPrompt) => System.Replace(Content, systemPrompt.Trim(), StringComparison.Ordinal);

    /// <summary>
    /// A new user turn and the start of the reply; after an earlier reply, that reply's end comes first. When the
    /// earlier reply stopped on a stop string the model already wrote (<paramref name="openedBy"/>, e.g. "\nUser:"),
    /// the turn goes on from it instead of writing it twice.
    /// </summary>
    public string UserTurnText(string userText, bool first, string? openedBy = null)
    {
        string text = (first ? "" : TurnEnd) + User.Replace(Content, userText.Trim(), StringComparison.Ordinal) + AssistantPrefix;
        return openedBy is { Length: > 0 } && text.StartsWith(openedBy, StringComparison.Ordinal) ? text[openedBy.Length..] : text;
    }

    /// <summary>
    /// The template's stop string a reply ended on (the engine names it; the model then already wrote the start of the
    /// next turn, and its tokens are in the history), or null for any other ending.
    /// </summary>
    public string? OpenedBy(string? stop) => stop is not null && StopStrings.Contains(stop) ? stop : null;

    /// <summary>A whole conversation (role, content) ending where the assistant's next reply begins.</summary>
    public string Render(IEnumerable<(string Role, string Content)> messages)
    {
        var text = new System.Text.StringBuilder();
        foreach (var (role, content) in messages)
            text.Append(role switch
            {
                "system" or "developer" => SystemText(content),
                "user" => User.Replace(Content, content.Trim(), StringComparison.Ordinal),
                "assistant" => AssistantPrefix + " " + content.Trim() + TurnEnd,
                "tool" => Tool.Replace(Content, content.Trim(), StringComparison.Ordinal),
                _ => throw new InvalidRequestException($"role '{role}' is not system, developer, user, assistant or tool", "messages"),
            });
        return text.Append(AssistantPrefix).ToString();
    }

    /// <summary>The reply as shown: without the stop text it ended on, trimmed.</summary>
    public string ReplyText(string generated)
    {
        int stop = StopStrings.Select(s => generated.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(generated.Length).Min();
        return generated[..stop].Trim();
    }
}
