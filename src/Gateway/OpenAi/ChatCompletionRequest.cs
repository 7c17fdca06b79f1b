using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// A <c>POST /v1/chat/completions</c> body, checked: messages (role and content; content as a string or as text
/// parts), the shared sampling fields (<see cref="SamplingFields"/>), n, stream, logprobs / top_logprobs, and
/// max_completion_tokens (OpenAI's newer name for max_tokens).
/// </summary>
public sealed record ChatCompletionRequest(string Model, IReadOnlyList<(string Role, string Content)> Messages, GenerationParameters Parameters,
    int N, bool Stream, bool IncludeUsage, bool Logprobs, int TopLogprobs)
{
    public const int MaxMessages = 1024;

    public static ChatCompletionRequest Parse(JsonElement body)
    {
        var fields = RequestFields.Parse(body);
        fields.RefuseUnsupported();
        string model = fields.RequiredString("model");
        var messages = ParseMessages(fields.Get("messages"));
        int n = fields.Integer("n", 1, CompletionRequest.MaxChoices) ?? 1;
        bool logprobs = fields.Bool("logprobs") ?? false;
        int topLogprobs = fields.Integer("top_logprobs", 0, 20) ?? 0;
        if (topLogprobs > 0 && !logprobs) throw ApiException.BadRequest("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
        bool stream = fields.Bool("stream") ?? false;
        var parameters = SamplingFields.Parse(fields, SamplingFields.MaxTokens(fields)) with { NumReturnSequences = n, Logprobs = logprobs ? topLogprobs : null };
        return new ChatCompletionRequest(model, messages, parameters, n, stream, fields.IncludeUsage(), logprobs, topLogprobs);
    }

    private static List<(string, string)> ParseMessages(JsonElement? messages)
    {
        if (messages is not { ValueKind: JsonValueKind.Array } list || list.GetArrayLength() == 0)
            throw ApiException.BadRequest("'messages' must be a non-empty array of {role, content}", "messages");
        if (list.GetArrayLength() > MaxMessages) throw ApiException.BadRequest($"'messages' holds more than {MaxMessages} messages", "messages");
        var parsed = new List<(string, string)>();
        int i = 0;
        foreach (var message in list.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (message.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest($"'{at}' must be an object with role and content", "messages");
            var fields = new RequestFields(message);
            string role = fields.String("role") ?? throw ApiException.BadRequest($"'{at}.role' is required", "messages");
            if (role is not ("system" or "developer" or "user" or "assistant"))
                throw ApiException.BadRequest($"'{at}.role' is '{role}': use system, developer, user or assistant", "messages");
            parsed.Add((role, Content(fields.Get("content"), at)));
        }
        if (parsed[^1].Item1 == "assistant") throw ApiException.BadRequest("the last message must not be the assistant's: it would be answered by itself", "messages");
        return parsed;
    }

    /// <summary>A string, or an array of parts of which only text parts can be read by a text model.</summary>
    private static string Content(JsonElement? content, string at)
    {
        switch (content)
        {
            case null: return "";
            case { ValueKind: JsonValueKind.String } text: return text.GetString()!;
            case { ValueKind: JsonValueKind.Array } parts:
                var texts = new List<string>();
                foreach (var part in parts.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type)
                        || type.ValueKind != JsonValueKind.String || type.GetString() != "text"
                        || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                        throw ApiException.BadRequest($"'{at}.content' parts must be {{\"type\":\"text\",\"text\":…}}: this model reads text only", "messages");
                    texts.Add(partText.GetString()!);
                }
                return string.Join("\n", texts);
            default: throw ApiException.BadRequest($"'{at}.content' must be a string or an array of text parts", "messages");
        }
    }
}
