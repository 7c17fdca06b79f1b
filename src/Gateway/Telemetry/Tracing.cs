using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Gpt2Orleans.Gateway.Telemetry;

/// <summary>
/// OpenTelemetry tracing (the OpenTelemetry packages): a span per HTTP request (ASP.NET Core's instrumentation;
/// health checks and scrapes left out), per grain call (Orleans' activity propagation, which the silo and the
/// gateway's client turn on) and per engine request (EngineTracing: queue time, prefill, decode,
/// tokens). On when an OTLP endpoint is configured (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, the standard variable; then
/// exported there) or <c>Tracing:Enabled</c> is true; otherwise no tracer listens and no span is made.
/// </summary>
public static class Tracing
{
    public const string ServiceName = "gpt2orleans";
    /// <summary>The engine's (EngineTracing.SourceName in the inference library, which the gateway does not reference) and Orleans'.</summary>
    public static readonly string[] Sources = ["Gpt2Orleans.Engine", "Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];
    private static readonly string[] Unsampled = ["/healthz", "/readyz", "/metrics"];

    public static IServiceCollection AddGpt2OrleansTracing(this IServiceCollection services, IConfiguration configuration)
    {
        bool otlp = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (!otlp && !configuration.GetValue<bool>("Tracing:Enabled")) return services;
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName))
            .WithTracing(tracing =>
            {
                tracing.AddSource(Sources).AddAspNetCoreInstrumentation(o => o.Filter = context => !Unsampled.Any(p => context.Request.Path.StartsWithSegments(p)));
                if (otlp) tracing.AddOtlpExporter(); // endpoint, protocol and headers from the OTEL_EXPORTER_OTLP_* variables
            });
        return services;
    }
}
