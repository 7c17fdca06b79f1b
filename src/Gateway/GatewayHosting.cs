using Gpt2Orleans.Gateway.Admin;
using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.Metrics;
using Gpt2Orleans.Gateway.OpenAi;
using Gpt2Orleans.Gateway.Playground;
using Gpt2Orleans.Gateway.Routing;
using Gpt2Orleans.Gateway.Sessions;
using Prometheus;

namespace Gpt2Orleans.Gateway;

/// <summary>The gateway's services and routes, added to any ASP.NET Core app that has an Orleans client (a standalone gateway) or is a silo.</summary>
public static class GatewayHosting
{
    public const long MaxBodyBytes = 4 << 20;

    public static IServiceCollection AddGpt2OrleansGateway(this IServiceCollection services)
    {
        Microsoft.Extensions.DependencyInjection.Extensions.ServiceCollectionDescriptorExtensions.TryAddSingleton(services, TimeProvider.System);
        services.AddSingleton<TenantAuthentication>();
        services.AddSingleton<AdminAuthentication>();
        Microsoft.Extensions.DependencyInjection.Extensions.ServiceCollectionDescriptorExtensions.TryAddSingleton(services,
            sp => new Grains.Routing.ModelRouter(sp.GetRequiredService<IClusterClient>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<ModelWorkers>();
        services.AddSingleton<ClusterGauges>();
        services.AddOpenApi();
        // prometheus-net exports every System.Diagnostics meter of the process (in a silo, the engine's
        // "gpt2orleans_engine_*" and Orleans' own); .NET's private QUIC internals are only noise.
        Prometheus.Metrics.ConfigureMeterAdapter(o => o.InstrumentFilterPredicate =
            instrument => !instrument.Meter.Name.StartsWith("Private.InternalDiagnostics", StringComparison.Ordinal));
        services.Configure<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>(o =>
        {
            o.Limits.MaxRequestBodySize = MaxBodyBytes;
            KestrelRejections.Configure(o);
        });
        return services;
    }

    public static WebApplication MapGpt2OrleansGateway(this WebApplication app)
    {
        app.UseKestrelRejectionBodies();
        // Responses without a body (no route: 404; a route with other methods: 405 with Allow, from routing) get the error object.
        app.UseStatusCodePages(context => ErrorHandling.WriteAsync(context.HttpContext, ErrorHandling.ForStatus(context.HttpContext)));
        app.UseRouting();
        app.UseHttpMetrics(); // request counts and durations by route and status code, errors included (they are answered inside it)
        app.UseMiddleware<ErrorHandling>();
        app.MapPost("/v1/completions", CompletionsEndpoint.Handle);
        app.MapPost("/v1/chat/completions", ChatCompletionsEndpoint.Handle);
        app.MapPost("/v1/classifications", ClassificationsEndpoint.Handle);
        app.MapPost("/v1/embeddings", EmbeddingsEndpoint.Handle);
        app.MapPost("/v1/question-answering", QuestionAnsweringEndpoint.Handle);
        app.MapPost("/v1/multiple-choice", MultipleChoiceEndpoint.Handle);
        app.MapPost("/tokenize", TokenizeEndpoints.Tokenize);
        app.MapPost("/detokenize", TokenizeEndpoints.Detokenize);
        app.MapGet("/v1/models", ModelsEndpoint.List);
        app.MapGet("/v1/models/{id}", ModelsEndpoint.Get);
        app.MapPost("/v1/sessions", SessionsEndpoint.Create);
        app.MapGet("/v1/sessions", SessionsEndpoint.List);
        app.MapGet("/v1/sessions/{id}", SessionsEndpoint.Get);
        app.MapDelete("/v1/sessions/{id}", SessionsEndpoint.Delete);
        app.MapPost("/v1/sessions/{id}/messages", SessionsEndpoint.Send);
        app.MapPost("/v1/sessions/{id}/fork", SessionsEndpoint.Fork);
        AdminEndpoints.Map(app);
        app.MapGet("/metrics", MetricsEndpoint.Handle);
        app.MapGet("/admin/metrics", MetricsEndpoint.HandleTenants);
        app.MapGet("/healthz", HealthEndpoints.Health);
        app.MapGet("/readyz", HealthEndpoints.Ready);
        app.MapOpenApi(); // /openapi/v1.json
        PlaygroundEndpoints.Map(app);
        // Where to go, once Kestrel has bound its addresses (a port of 0 is only known then).
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Gpt2Orleans.Gateway");
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            foreach (var url in app.Urls)
                logger.LogInformation("Listening on {Url}: the API at {Api}, the playground at {Playground}", url, url.TrimEnd('/') + "/v1", url.TrimEnd('/') + "/");
        });
        return app;
    }
}
