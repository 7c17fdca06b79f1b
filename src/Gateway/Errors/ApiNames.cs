namespace Gpt2Orleans.Gateway.Errors;

/// <summary>The engine names parameters as Hugging Face does; a client of this API knows OpenAI's names.</summary>
public static class ApiNames
{
    private static readonly Dictionary<string, string> OpenAiName = new()
    {
        ["max_new_tokens"] = "max_tokens",
        ["min_new_tokens"] = "min_tokens",
        ["num_return_sequences"] = "n",
        ["stop_strings"] = "stop",
        ["logprobs"] = "logprobs",
        ["sequence_bias"] = "logit_bias",
    };

    public static string? Of(string? parameter) => parameter is not null && OpenAiName.TryGetValue(parameter, out var name) ? name : parameter;

    public static string InMessage(string message) =>
        OpenAiName.Where(p => p.Key != p.Value).Aggregate(message, (text, p) => text.Replace(p.Key, p.Value, StringComparison.Ordinal));
}
