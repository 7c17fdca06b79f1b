using Gpt2Orleans.Silo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

// gpt2o-silo: one Orleans silo serving the models named by --model NAME=SOURCE (default: random GPT-2 small).
// Settings come from appsettings.json, then Gpt2Orleans__* environment variables, then the command line.
try
{
    var (settings, rest) = SiloCommandLine.Parse(args);
    var builder = Host.CreateApplicationBuilder(rest);
    builder.Configuration.AddInMemoryCollection(settings);
    var siloSettings = builder.Configuration.GetSection(SiloSettings.Section).Get<SiloSettings>() ?? new SiloSettings();
    siloSettings.Validate();
    builder.UseOrleans(silo => SiloHosting.Configure(silo, siloSettings));
    using var host = builder.Build();
    await host.RunAsync();
    return 0;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
