using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// A <c>POST /v1/completions</c> body, checked: the prompts, the shared sampling fields (<see cref="SamplingFields"/>),
/// n, echo, logprobs, stream, and best_of / use_beam_search / num_beams / length_penalty. best_of above n without
/// beam search samples best_of candidates and returns the n with the highest log-probability, as OpenAI does.
/// </summary>
public sealed record CompletionRequest(string Model, IReadOnlyList<Prompt> Prompts, GenerationParameters Parameters, int N, int BestOf, bool Stream,
    bool IncludeUsage, int? Logprobs, bool Echo)
{
    public const int MaxChoices = 16;
    public const int Vocabulary = SamplingFields.Vocabulary;

    public static CompletionRequest Parse(JsonElement body)
    {
        var fields = RequestFields.Parse(body);
        fields.RefuseUnsupported();
        fields.RefuseTools("'tools' is not a completions field");
        string model = fields.RequiredString("model");
        var prompts = fields.Get("prompt") is { } prompt ? Prompt.ParseAll(prompt, "prompt", MaxChoices)
            : [new Prompt("<|endoftext|>", null)]; // OpenAI's default prompt
        int n = fields.Integer("n", 1, MaxChoices) ?? 1;
        int bestOf = fields.Integer("best_of", 1, MaxChoices) ?? n;
        bool beam = fields.Bool("use_beam_search") ?? false;
        int? numBeams = fields.Integer("num_beams", 1, 32);
        if (bestOf < n) throw ApiException.BadRequest($"'best_of' ({bestOf}) must be at least 'n' ({n})", "best_of");
        int beams = beam ? numBeams ?? Math.Max(bestOf, 2) : numBeams ?? 1;
        if (beams > 1 && beams < n) throw ApiException.BadRequest($"the beam width ({beams}) must be at least 'n' ({n})", "num_beams");
        bool stream = fields.Bool("stream") ?? false;
        var sampling = SamplingFields.Parse(fields, fields.Integer("max_tokens", 0, 1 << 20) ?? 16);
        var parameters = sampling with
        {
            DoSample = beams == 1 && sampling.DoSample == true,
            NumBeams = beams,
            LengthPenalty = fields.Number("length_penalty", -100, 100),
            NumReturnSequences = n,
            Logprobs = fields.Integer("logprobs", 0, 20),
            Constraint = StructuredOutputFields.Parse(fields),
        };
        if (beams > 1) bestOf = n; // the beam width plays best_of's part
        if (beams > 1 && stream) throw ApiException.BadRequest("beam search cannot stream: its sequences are chosen at the end", "stream");
        if (bestOf > n && stream) throw ApiException.BadRequest("'best_of' greater than 'n' cannot stream: the best are known only at the end", "stream");
        return new CompletionRequest(model, prompts, parameters, n, bestOf, stream, fields.IncludeUsage(), parameters.Logprobs, fields.Bool("echo") ?? false);
    }
}
