using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>One input text of a request (a completion's prompt, an embedding's input): text, or token ids.</summary>
public sealed record Prompt(string? Text, IReadOnlyList<int>? TokenIds)
{
    public const int Vocabulary = SamplingFields.Vocabulary;

    /// <summary>OpenAI's shapes: a string, an array of strings, an array of token ids, or an array of such arrays (at most <paramref name="max"/>).</summary>
    public static IReadOnlyList<Prompt> ParseAll(JsonElement value, string field, int max)
    {
        ApiException Bad() => RequestFields.Wrong(field, "a string, an array of strings, an array of token ids, or an array of such arrays");
        switch (value.ValueKind)
        {
            case JsonValueKind.String: return [new Prompt(value.GetString()!, null)];
            case JsonValueKind.Array when value.GetArrayLength() == 0: throw ApiException.BadRequest($"'{field}' is empty", field);
            case JsonValueKind.Array:
                var items = value.EnumerateArray().ToList();
                if (items.All(i => i.ValueKind == JsonValueKind.Number)) return [new Prompt(null, TokenIds(items))]; // one prompt, however long
                if (items.Count > max) throw ApiException.BadRequest($"'{field}' holds more than {max} prompts", field);
                if (items.All(i => i.ValueKind == JsonValueKind.String)) return items.Select(i => new Prompt(i.GetString()!, null)).ToList();
                if (items.All(i => i.ValueKind == JsonValueKind.Array)) return items.Select(i => new Prompt(null, TokenIds(i.EnumerateArray().ToList()))).ToList();
                throw Bad();
            default: throw Bad();
        }

        IReadOnlyList<int> TokenIds(List<JsonElement> ids)
        {
            if (ids.Count == 0) throw ApiException.BadRequest($"'{field}' holds an empty list of token ids", field);
            return ids.Select(i => i.ValueKind == JsonValueKind.Number && i.TryGetInt32(out var id) && id is >= 0 and < Vocabulary ? id
                : throw ApiException.BadRequest($"'{field}' token ids must be integers between 0 and {Vocabulary - 1}", field)).ToList();
        }
    }
}
