using System.Runtime.InteropServices;
using System.Text.Json;
using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.Routing;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// <c>POST /v1/embeddings</c> in OpenAI's shape: <c>{"model", "input": text(s) or token ids, "encoding_format":
/// "float"|"base64"}</c> → one embedding per input: the model's last hidden state pooled over the input's tokens
/// (<c>"pooling": "mean"</c>, the default, or <c>"last"</c>, this server's extension). A GPT-2's width is fixed, so
/// <c>dimensions</c> is a 400. base64 is the float32 values' little-endian bytes, as OpenAI sends them.
/// </summary>
public static class EmbeddingsEndpoint
{
    public const int MaxInputs = 64;

    public static async Task<IResult> Handle(HttpContext context, TenantAuthentication auth, ModelWorkers workers)
    {
        var (tenant, fields, model) = await ModelCall.ReadAsync(context, auth);
        if (fields.Get("dimensions") is not null)
            throw ApiException.BadRequest($"'dimensions' is not supported: model '{model}' embeds in its hidden size", "dimensions", "unsupported_parameter");
        var inputs = Prompt.ParseAll(fields.Get("input") ?? throw ApiException.BadRequest("'input' is required", "input"), "input", MaxInputs);
        if (inputs.Any(i => i.Text is "")) throw ApiException.BadRequest("'input' holds an empty text", "input");
        string format = fields.String("encoding_format") ?? "float";
        if (format is not ("float" or "base64")) throw RequestFields.Wrong("encoding_format", "'float' or 'base64'");
        string pooling = fields.String("pooling") ?? "mean";
        if (pooling is not ("mean" or "last")) throw RequestFields.Wrong("pooling", "'mean' or 'last'");

        var (worker, _) = await workers.PickAsync(model, tenant);
        var embeddings = await worker.Embed(tenant, inputs.Select(i => new EmbeddingInput(i.Text, i.TokenIds)).ToList(), pooling);
        int tokens = embeddings.Sum(e => e.Tokens);
        return Results.Json(new
        {
            @object = "list", model,
            data = embeddings.Select((e, i) => new
            {
                @object = "embedding", index = i,
                embedding = format == "base64" ? (object)Convert.ToBase64String(MemoryMarshal.AsBytes(e.Vector.AsSpan())) : e.Vector,
            }),
            usage = new { prompt_tokens = tokens, total_tokens = tokens },
        });
    }
}
