using Gpt2Orleans.Gateway.Auth;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>The start of every one-model request: the caller's tenant, the JSON body's fields and its required <c>model</c>.</summary>
public sealed record ModelCall(string Tenant, RequestFields Fields, string Model)
{
    public static async Task<ModelCall> ReadAsync(HttpContext context, TenantAuthentication auth)
    {
        string tenant = await auth.AuthenticateAsync(context);
        var fields = RequestFields.Parse(await RequestFields.ReadBodyAsync(context));
        return new ModelCall(tenant, fields, fields.RequiredString("model"));
    }
}
