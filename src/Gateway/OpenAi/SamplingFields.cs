using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// The sampling and stopping fields that completions and chat completions share: OpenAI's (max_tokens,
/// temperature, top_p, stop, seed, presence/frequency penalties, logit_bias, user) and the extensions vLLM accepts
/// for GPT-2-style generation (top_k, min_p, repetition_penalty, no_repeat_ngram_size, min_tokens, ignore_eos).
/// With <c>openAiDefaults</c> a field left out takes OpenAI's default (sampling at temperature 1 from the whole
/// vocabulary, no stop strings); without, it stays unset so that defaults kept elsewhere (a session's) apply.
/// </summary>
public static class SamplingFields
{
    public const int Vocabulary = 50257;
    public const int MaxStopStrings = 4;

    /// <summary>max_completion_tokens (OpenAI's newer name), else max_tokens; null when neither is given.</summary>
    public static int? MaxTokens(RequestFields fields) =>
        fields.Integer("max_completion_tokens", 0, 1 << 20) ?? fields.Integer("max_tokens", 0, 1 << 20);

    public static GenerationParameters Parse(RequestFields fields, int? maxTokens, bool openAiDefaults = true)
    {
        double? temperature = fields.Number("temperature", 0, 2) ?? (openAiDefaults ? 1 : null);
        int? topK = fields.Integer("top_k", -1, Vocabulary);
        fields.String("user"); // accepted for compatibility (OpenAI uses it for abuse monitoring)
        return new GenerationParameters
        {
            MaxNewTokens = maxTokens,
            DoSample = temperature is { } t ? t > 0 : null,
            Temperature = temperature > 0 ? temperature : null,
            TopP = fields.PositiveNumber("top_p", 1),
            // OpenAI samples from the whole vocabulary unless top_k is given (-1 says so too, as in vLLM)
            TopK = topK is { } k ? Math.Max(0, k) : openAiDefaults ? 0 : null,
            MinP = fields.Number("min_p", 0, 1),
            RepetitionPenalty = fields.PositiveNumber("repetition_penalty", 100),
            NoRepeatNgramSize = fields.Integer("no_repeat_ngram_size", 0, 1024),
            MinNewTokens = fields.Integer("min_tokens", 0, 1 << 20),
            PresencePenalty = fields.Number("presence_penalty", -2, 2),
            FrequencyPenalty = fields.Number("frequency_penalty", -2, 2),
            LogitBias = fields.LogitBias("logit_bias", Vocabulary),
            Seed = fields.Long("seed"),
            StopStrings = fields.Strings("stop", MaxStopStrings) ?? (openAiDefaults ? [] : null),
            EosTokenIds = (fields.Bool("ignore_eos") ?? false) ? [] : null,
        };
    }
}
