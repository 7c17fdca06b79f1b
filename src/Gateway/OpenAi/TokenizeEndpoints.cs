using System.Text.Json;
using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.Routing;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// vLLM's <c>POST /tokenize</c> (<c>{"model", "prompt"}</c> → <c>{"tokens", "count", "max_model_len"}</c>) and
/// <c>POST /detokenize</c> (<c>{"model", "tokens"}</c> → <c>{"prompt"}</c>), with the model's own tokenizer.
/// </summary>
public static class TokenizeEndpoints
{
    public const int MaxTokens = 1 << 20;

    public static async Task<IResult> Tokenize(HttpContext context, TenantAuthentication auth, ModelWorkers workers)
    {
        var (tenant, fields, model) = await ModelCall.ReadAsync(context, auth);
        string prompt = fields.Get("prompt") is { ValueKind: JsonValueKind.String } p ? p.GetString()! : throw RequestFields.Wrong("prompt", "a string");
        var (worker, _) = await workers.PickAsync(model, tenant);
        var tokens = worker.Tokenize(prompt);
        var status = worker.GetStatus();
        return Results.Json(new { tokens = await tokens, count = (await tokens).Count, max_model_len = (await status).ContextLength });
    }

    public static async Task<IResult> Detokenize(HttpContext context, TenantAuthentication auth, ModelWorkers workers)
    {
        var (tenant, fields, model) = await ModelCall.ReadAsync(context, auth);
        if (fields.Get("tokens") is not { ValueKind: JsonValueKind.Array } array || array.GetArrayLength() > MaxTokens)
            throw RequestFields.Wrong("tokens", $"an array of at most {MaxTokens} token ids");
        var ids = array.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.Number && t.TryGetInt32(out int id) && id >= 0 ? id
            : throw RequestFields.Wrong("tokens", "an array of non-negative integer token ids")).ToList();
        var (worker, _) = await workers.PickAsync(model, tenant);
        return Results.Json(new { prompt = ids.Count == 0 ? "" : await worker.Detokenize(ids) });
    }
}
