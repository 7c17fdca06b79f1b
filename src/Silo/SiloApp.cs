using Gpt2Orleans.Gateway;
using Gpt2Orleans.Gateway.Telemetry;

namespace Gpt2Orleans.Silo;

/// <summary>
/// The silo as an app: Orleans silo plus the co-hosted HTTP gateway (on http://127.0.0.1:8080 unless --urls says
/// otherwise). Settings come from appsettings.json, then Gpt2Orleans__* environment variables, then the command line.
/// </summary>
public static class SiloApp
{
    public const string DefaultUrl = "http://127.0.0.1:8080";

    /// <param name="configureServices">Services added after the app's own (a test's trace exporter).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? configureServices = null)
    {
        var (settings, others) = SiloCommandLine.Parse(args);
        var builder = WebApplication.CreateBuilder(others);
        builder.Configuration.AddInMemoryCollection(settings);
        var siloSettings = builder.Configuration.GetSection(SiloSettings.Section).Get<SiloSettings>() ?? new SiloSettings();
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
            builder.WebHost.UseUrls(DefaultUrl);
        builder.UseOrleans(silo => SiloHosting.Configure(silo, siloSettings));
        builder.Services.AddSingleton(siloSettings); // the settings the silo was configured with, for its hosted services
        builder.Services.AddHostedService<DevelopmentTenant>();
        builder.Services.AddGpt2OrleansGateway();
        builder.Services.AddGpt2OrleansTracing(builder.Configuration);
        configureServices?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapGpt2OrleansGateway();
        return app;
    }
}
