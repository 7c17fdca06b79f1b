using System.Text.Json;
using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.Routing;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// <c>POST /v1/classifications</c> with <c>{"model", "input": string or array of strings}</c>. A model with a
/// sequence-classification head answers each input's label and every label's probability (labels from the
/// checkpoint's id2label); one with a token-classification head answers a label for each token.
/// </summary>
public static class ClassificationsEndpoint
{
    public const int MaxInputs = 64;
    private const string SequenceHead = "sequence-classification", TokenHead = "token-classification";

    public static async Task<IResult> Handle(HttpContext context, TenantAuthentication auth, ModelWorkers workers)
    {
        var (tenant, fields, model) = await ModelCall.ReadAsync(context, auth);
        var inputs = fields.Get("input") is { ValueKind: JsonValueKind.String } one ? [one.GetString()!]
            : fields.Strings("input", MaxInputs) ?? throw ApiException.BadRequest("'input' is required: a string or an array of strings", "input");
        if (inputs.Count == 0 || inputs.Any(string.IsNullOrEmpty)) throw ApiException.BadRequest("'input' holds an empty text", "input");
        var (worker, info) = await workers.PickAsync(model, tenant);
        if (info.Definition.Heads.Contains(SequenceHead))
        {
            var results = await worker.Classify(tenant, inputs);
            return Results.Json(new
            {
                @object = "list", model,
                data = results.Select((r, i) => new
                {
                    index = i, @object = "classification", label = r.Label, score = r.Scores.First(s => s.Label == r.Label).Score,
                    scores = r.Scores.Select(s => new { label = s.Label, score = s.Score }),
                }),
            });
        }
        if (info.Definition.Heads.Contains(TokenHead))
        {
            var data = new List<object>();
            for (int i = 0; i < inputs.Count; i++)
            {
                var tokens = await worker.ClassifyTokens(tenant, inputs[i]);
                data.Add(new
                {
                    index = i, @object = "token_classification",
                    tokens = tokens.Select(t => new { token = t.Token, token_id = t.TokenId, label = t.Label, score = t.Score }),
                });
            }
            return Results.Json(new { @object = "list", model, data });
        }
        throw ApiException.BadRequest($"model '{model}' has no classification head (its heads: {string.Join(", ", info.Definition.Heads)})", "model");
    }
}
