using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>One prompt of a completion request: text, or token ids.</summary>
public sealed record Prompt(string? Text, IReadOnlyList<int>? TokenIds);

/// <summary>
/// A <c>POST /v1/completions</c> body, checked: OpenAI's fields and the extensions vLLM accepts for GPT-2-style
/// generation (top_k, min_p, repetition_penalty, no_repeat_ngram_size, min_tokens, use_beam_search / num_beams,
/// length_penalty). Sampling is on unless temperature is 0, as in OpenAI's API.
/// </summary>
public sealed record CompletionRequest(string Model, IReadOnlyList<Prompt> Prompts, GenerationParameters Parameters, int N, bool Stream,
    bool IncludeUsage, int? Logprobs, bool Echo)
{
    public const int MaxChoices = 16;
    public const int Vocabulary = 50257;

    public static CompletionRequest Parse(JsonElement body)
    {
        var fields = RequestFields.Parse(body);
        string model = fields.RequiredString("model");
        var prompts = ParsePrompts(fields.Get("prompt"));
        int n = fields.Integer("n", 1, MaxChoices) ?? 1;
        int? bestOf = fields.Integer("best_of", 1, MaxChoices);
        bool beam = fields.Bool("use_beam_search") ?? false;
        int? numBeams = fields.Integer("num_beams", 1, 32);
        if (bestOf is { } b && b < n) throw ApiException.BadRequest($"'best_of' ({b}) must be at least 'n' ({n})", "best_of");
        if (bestOf is { } width && width != n && !beam)
            throw ApiException.BadRequest("'best_of' greater than 'n' is supported with use_beam_search (as the beam width)", "best_of");
        int beams = beam ? numBeams ?? Math.Max(bestOf ?? n, 2) : numBeams ?? 1;
        if (beams > 1 && beams < n) throw ApiException.BadRequest($"the beam width ({beams}) must be at least 'n' ({n})", "num_beams");
        double temperature = fields.Number("temperature", 0, 2) ?? 1;
        bool stream = fields.Bool("stream") ?? false;
        bool includeUsage = fields.Get("stream_options") is { } options && options.ValueKind == JsonValueKind.Object
            && options.TryGetProperty("include_usage", out var usage) && usage.ValueKind == JsonValueKind.True;
        int? topK = fields.Integer("top_k", -1, Vocabulary);
        fields.String("user"); // accepted for compatibility (OpenAI uses it for abuse monitoring)
        var parameters = new GenerationParameters
        {
            MaxNewTokens = fields.Integer("max_tokens", 0, 1 << 20) ?? 16,
            DoSample = beams == 1 && temperature > 0,
            Temperature = temperature > 0 ? temperature : null,
            TopP = fields.Number("top_p", double.Epsilon, 1),
            TopK = topK is null ? 0 : Math.Max(0, topK.Value), // OpenAI samples from the whole vocabulary unless top_k is given
            MinP = fields.Number("min_p", 0, 1),
            RepetitionPenalty = fields.Number("repetition_penalty", double.Epsilon, 100),
            NoRepeatNgramSize = fields.Integer("no_repeat_ngram_size", 0, 1024),
            MinNewTokens = fields.Integer("min_tokens", 0, 1 << 20),
            PresencePenalty = fields.Number("presence_penalty", -2, 2),
            FrequencyPenalty = fields.Number("frequency_penalty", -2, 2),
            LogitBias = fields.LogitBias("logit_bias", Vocabulary),
            NumBeams = beams,
            LengthPenalty = fields.Number("length_penalty", -100, 100),
            NumReturnSequences = n,
            Seed = fields.Long("seed"),
            StopStrings = fields.Strings("stop", 4) ?? [],
            Logprobs = fields.Integer("logprobs", 0, 20),
            EosTokenIds = (fields.Bool("ignore_eos") ?? false) ? [] : null,
        };
        if (beams > 1 && stream) throw ApiException.BadRequest("beam search cannot stream: its sequences are chosen at the end", "stream");
        return new CompletionRequest(model, prompts, parameters, n, stream, includeUsage, parameters.Logprobs, fields.Bool("echo") ?? false);
    }

    private static IReadOnlyList<Prompt> ParsePrompts(JsonElement? prompt)
    {
        if (prompt is not { } p) return [new Prompt("<|endoftext|>", null)]; // OpenAI's default prompt
        static ApiException Bad() => RequestFields.Wrong("prompt", "a string, an array of strings, an array of token ids, or an array of such arrays");
        switch (p.ValueKind)
        {
            case JsonValueKind.String: return [new Prompt(p.GetString()!, null)];
            case JsonValueKind.Array when p.GetArrayLength() == 0: throw ApiException.BadRequest("'prompt' is empty", "prompt");
            case JsonValueKind.Array:
                var items = p.EnumerateArray().ToList();
                if (items.Count > MaxChoices) throw ApiException.BadRequest($"'prompt' holds more than {MaxChoices} prompts", "prompt");
                if (items.All(i => i.ValueKind == JsonValueKind.String)) return items.Select(i => new Prompt(i.GetString()!, null)).ToList();
                if (items.All(i => i.ValueKind == JsonValueKind.Number)) return [new Prompt(null, TokenIds(items))];
                if (items.All(i => i.ValueKind == JsonValueKind.Array)) return items.Select(i => new Prompt(null, TokenIds(i.EnumerateArray().ToList()))).ToList();
                throw Bad();
            default: throw Bad();
        }

        static IReadOnlyList<int> TokenIds(List<JsonElement> ids)
        {
            if (ids.Count == 0) throw ApiException.BadRequest("'prompt' holds an empty list of token ids", "prompt");
            return ids.Select(i => i.ValueKind == JsonValueKind.Number && i.TryGetInt32(out var id) && id is >= 0 and < Vocabulary ? id
                : throw ApiException.BadRequest($"'prompt' token ids must be integers between 0 and {Vocabulary - 1}", "prompt")).ToList();
        }
    }
}
