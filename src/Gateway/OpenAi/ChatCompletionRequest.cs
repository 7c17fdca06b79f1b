using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// A <c>POST /v1/chat/completions</c> body, checked: messages (role and content; content as a string or as text
/// parts), the shared sampling fields (<see cref="SamplingFields"/>), n, stream, logprobs / top_logprobs, and
/// max_completion_tokens (OpenAI's newer name for max_tokens), structured outputs (<see cref="StructuredOutputFields"/>)
/// and tool calls (<see cref="ToolChoice"/>; past calls and their results are messages, written by the chat template).
/// </summary>
public sealed record ChatCompletionRequest(string Model, IReadOnlyList<(string Role, string Content)> Messages, GenerationParameters Parameters,
    int N, bool Stream, bool IncludeUsage, bool Logprobs, int TopLogprobs, ToolChoice? Tools)
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
        var structured = StructuredOutputFields.Parse(fields);
        var tools = ToolChoice.Parse(fields);
        if (structured is not null && tools is not null)
            throw ApiException.BadRequest($"'{structured.Parameter}' and a required tool call both constrain the reply: send one", structured.Parameter);
        var parameters = SamplingFields.Parse(fields, SamplingFields.MaxTokens(fields)) with
        {
            NumReturnSequences = n,
            Logprobs = logprobs ? topLogprobs : null,
            Constraint = tools?.Constraint ?? structured,
        };
        return new ChatCompletionRequest(model, messages, parameters, n, stream, fields.IncludeUsage(), logprobs, topLogprobs, tools);
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
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
                throw ApiException.BadRequest($"'{at}.role' is '{role}': use system, developer, user, assistant or tool", "messages");
            string content = Content(fields.Get("content"), at);
            if (role == "tool" && fields.String("tool_call_id") is not { Length: > 0 })
                throw ApiException.BadRequest($"'{at}.tool_call_id' is required: it names the call this message answers", "messages");
            if (role == "assistant" && fields.Get("tool_calls") is { ValueKind: not JsonValueKind.Null } calls)
                content = string.Join("\n", new[] { content }.Concat(ToolCalls(calls, at)).Where(t => t.Length > 0));
            parsed.Add((role, content));
        }
        if (parsed[^1].Item1 == "assistant") throw ApiException.BadRequest("the last message must not be the assistant's: it would be answered by itself", "messages");
        return parsed;
    }

    /// <summary>An assistant message's past tool calls, written as the model writes a call (<see cref="ToolCallText"/>).</summary>
    private static IEnumerable<string> ToolCalls(JsonElement calls, string at)
    {
        if (calls.ValueKind != JsonValueKind.Array) throw ApiException.BadRequest($"'{at}.tool_calls' must be an array", "messages");
        var texts = new List<string>();
        foreach (var call in calls.EnumerateArray())
        {
            if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object
                || !function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || !ToolCallText.IsValidName(name.GetString()!)
                || !function.TryGetProperty("arguments", out var arguments) || arguments.ValueKind != JsonValueKind.String)
                throw ApiException.BadRequest($"'{at}.tool_calls' items must be {{\"type\":\"function\",\"function\":{{\"name\":…,\"arguments\":\"…\"}}}}", "messages");
            texts.Add(ToolCallText.Format(name.GetString()!, arguments.GetString()!));
        }
        return texts;
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
