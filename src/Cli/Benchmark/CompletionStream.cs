using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Gpt2Orleans.Cli.Benchmark;

/// <summary>
/// A streamed completion as its reader saw it: its text, its token count (from the usage chunk, 0 without one), and
/// when (on the reader's clock) the first and the last chunk carrying a choice arrived.
/// </summary>
public sealed record CompletionStream(string Text, int Tokens, double? FirstToken, double LastToken)
{
    /// <summary>Reads a completion's server-sent events to <c>[DONE]</c> or the end of the body.</summary>
    public static async Task<CompletionStream> ReadAsync(HttpResponseMessage response, Stopwatch watch, CancellationToken cancellationToken = default)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        var text = new StringBuilder();
        int count = 0;
        double? first = null;
        double last = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            string data = line["data: ".Length..];
            if (data == "[DONE]") break;
            using var chunk = JsonDocument.Parse(data);
            if (chunk.RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object) count = usage.GetProperty("completion_tokens").GetInt32();
            foreach (var choice in chunk.RootElement.GetProperty("choices").EnumerateArray())
            {
                first ??= watch.Elapsed.TotalSeconds;
                last = watch.Elapsed.TotalSeconds;
                text.Append(choice.GetProperty("text").GetString());
            }
        }
        return new CompletionStream(text.ToString(), count, first, last);
    }
}
