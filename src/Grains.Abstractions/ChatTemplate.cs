namespace Gpt2Orleans.Grains;

/// <summary>
/// GPT-2 has no chat format, so a conversation is plain text: the system prompt on its own line, then
/// "User: …" / "Assistant: …" lines. Generation stops at the next "\nUser:" so the model does not write the
/// user's turn; the stop text is cut from the reply.
/// </summary>
public static class ChatTemplate
{
    public const string StopString = "\nUser:";

    public static string SystemText(string systemPrompt) => systemPrompt.Trim() + "\n";

    public static string UserTurnText(string userText, bool first) => (first ? "" : "\n") + "User: " + userText.Trim() + "\nAssistant:";

    /// <summary>The reply as shown: without the stop text it ended on, trimmed.</summary>
    public static string ReplyText(string generated)
    {
        int stop = generated.IndexOf(StopString, StringComparison.Ordinal);
        return (stop >= 0 ? generated[..stop] : generated).Trim();
    }
}
