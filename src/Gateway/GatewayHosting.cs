using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.OpenAi;
using Gpt2Orleans.Gateway.Routing;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway;

/// <summary>The gateway's services and routes, added to any ASP.NET Core app that has an Orleans client (a standalone gateway) or is a silo.</summary>
public static class GatewayHosting
{
    public const long MaxBodyBytes = 4 << 20;

    public static IServiceCollection AddGpt2OrleansGateway(this IServiceCollection services)
    {
        services.AddSingleton<TenantAuthentication>();
        services.AddSingleton<ModelWorkers>();
        services.Configure<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>(o => o.Limits.MaxRequestBodySize = MaxBodyBytes);
        return services;
    }

    public static WebApplication MapGpt2OrleansGateway(this WebApplication app)
    {
        app.UseMiddleware<ErrorHandling>();
        app.MapPost("/v1/completions", CompletionsEndpoint.Handle);
        app.MapGet("/v1/models", ModelsEndpoint.List);
        app.MapGet("/v1/models/{id}", ModelsEndpoint.Get);
        app.MapGet("/healthz", HealthEndpoints.Health);
        app.MapGet("/readyz", HealthEndpoints.Ready);
        app.MapFallback(context => throw ApiException.NotFound($"no route {context.Request.Method} {context.Request.Path}"));
        return app;
    }
}
