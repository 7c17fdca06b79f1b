using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.Routing;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// <c>POST /v1/multiple-choice</c> with <c>{"model", "choices": [texts]}</c> → a double-heads model's <c>mc_logits</c>, one
/// per choice (each scored at its last token), their softmax, and the best choice's index.
/// </summary>
public static class MultipleChoiceEndpoint
{
    public const int MaxChoices = 64;

    public static async Task<IResult> Handle(HttpContext context, TenantAuthentication auth, ModelWorkers workers)
    {
        var (tenant, fields, model) = await ModelCall.ReadAsync(context, auth);
        var choices = fields.Strings("choices", MaxChoices) ?? throw ApiException.BadRequest("'choices' is required: an array of at least two texts", "choices");
        if (choices.Count < 2) throw ApiException.BadRequest("'choices' needs at least two texts", "choices");
        if (choices.Any(string.IsNullOrEmpty)) throw ApiException.BadRequest("'choices' holds an empty text", "choices");
        var (worker, _) = await workers.PickAsync(model, tenant);
        var scores = await worker.ScoreChoices(tenant, choices);
        float best = scores.Max(s => s.Logit);
        return Results.Json(new
        {
            @object = "multiple_choice", model,
            best = scores.ToList().FindIndex(s => s.Logit == best),
            data = scores.Select((s, i) => new { index = i, logit = s.Logit, score = s.Score }),
        });
    }
}
