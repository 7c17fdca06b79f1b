using Microsoft.Extensions.Configuration;
using Gpt2Orleans.Silo;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>The silo's command line and settings: repeatable --model, switches, and errors that name the problem.</summary>
public sealed class SiloSettingsTests
{
    [Fact]
    public void Models_repeat_and_switches_map_to_settings_while_the_rest_passes_through()
    {
        var (settings, others) = SiloCommandLine.Parse(["--model", "a=./a", "--model=b=org/b", "--clustering", "redis", "--redis=127.0.0.1:6379", "--urls", "http://127.0.0.1:5000"]);
        Assert.Equal("a=./a", settings["Gpt2Orleans:Models:0"]);
        Assert.Equal("b=org/b", settings["Gpt2Orleans:Models:1"]);
        Assert.Equal("redis", settings["Gpt2Orleans:Clustering"]);
        Assert.Equal("127.0.0.1:6379", settings["Gpt2Orleans:Redis"]);
        Assert.Equal(["--urls", "http://127.0.0.1:5000"], others);
    }

    [Fact]
    public void No_model_means_the_default_model()
    {
        Assert.Equal(new Dictionary<string, string> { ["gpt2-random"] = "default" }, new SiloSettings().ParseModels());
    }

    [Theory]
    [InlineData("Models", "noequals", "expected NAME=SOURCE")]
    [InlineData("Models", "../x=./x", "may only hold")]
    [InlineData("Clustering", "zookeeper", "clustering 'zookeeper'")]
    [InlineData("Clustering", "kubernetes", "clustering kubernetes needs --redis")] // Kubernetes hosting keeps no membership
    [InlineData("Storage", "azureblob", "needs --blob-connection-string")]
    [InlineData("AdvertisedHost", "silo a", "advertised-host 'silo a'")]
    [InlineData("SiloPort", "70000", "silo-port 70000")]
    [InlineData("Device", "tpu", "device 'tpu'")]
    [InlineData("DType", "float8", "dtype: dtype 'float8' is not one of")]
    [InlineData("KvDType", "int8", "kv-dtype: dtype 'int8' is not one of")]
    [InlineData("ModelMemoryMegabytes", "0", "model-memory-mb 0: must be positive")]
    public void A_bad_setting_is_refused_with_its_name(string setting, string value, string expected)
    {
        var settings = new SiloSettings();
        switch (setting)
        {
            case "Models": settings.Models = [value]; break;
            case "Clustering": settings.Clustering = value; break;
            case "Storage": settings.Storage = value; break;
            case "AdvertisedHost": settings.AdvertisedHost = value; settings.Clustering = "redis"; settings.Redis = "127.0.0.1:6379"; break;
            case "SiloPort": settings.SiloPort = int.Parse(value); break;
            case "Device": settings.Device = value; break;
            case "DType": settings.DType = value; break;
            case "KvDType": settings.KvDType = value; break;
            case "ModelMemoryMegabytes": settings.ModelMemoryMegabytes = long.Parse(value); break;
        }
        var error = Assert.Throws<ArgumentException>(settings.Validate);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Host_switches_and_configuration_paths_pass_through_and_anything_else_is_refused_by_name()
    {
        var (_, others) = SiloCommandLine.Parse(["--GPT2O_API_KEY", "k", "--Logging:LogLevel:Default", "Warning", "--environment=Production"]);
        Assert.Equal(["--GPT2O_API_KEY", "k", "--Logging:LogLevel:Default", "Warning", "--environment=Production"], others);
        var typo = Assert.Throws<ArgumentException>(() => SiloCommandLine.Parse(["--model", "a=./a", "--quantise", "int8"]));
        Assert.StartsWith("unknown switch '--quantise'", typo.Message);
        Assert.Contains("--dtype", typo.Message); // it lists what exists
        Assert.Contains("unknown switch '--kv-cache'", Assert.Throws<ArgumentException>(() => SiloCommandLine.Parse(["--kv-cache=64"])).Message);
        Assert.Contains("unexpected argument 'serve'", Assert.Throws<ArgumentException>(() => SiloCommandLine.Parse(["serve"])).Message);
    }

    /// <summary>The real binary: a typo stops it before anything starts, with <c>error: …</c> and exit code 2.</summary>
    [Fact]
    public async Task The_silo_process_stops_on_an_unknown_switch_with_exit_code_2()
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "gpt2o-silo.dll"), "--quantise", "int8"])
        {
            RedirectStandardError = true, RedirectStandardOutput = true, WorkingDirectory = AppContext.BaseDirectory,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try { await process.WaitForExitAsync(timeout.Token); }
        finally { if (!process.HasExited) process.Kill(entireProcessTree: true); }
        Assert.Equal(2, process.ExitCode);
        Assert.StartsWith("error: unknown switch '--quantise'", await stderr);
    }

    [Fact]
    public void A_switch_without_its_value_is_refused()
    {
        Assert.Contains("--redis needs a value", Assert.Throws<ArgumentException>(() => SiloCommandLine.Parse(["--redis"])).Message);
    }

    [Fact]
    public void A_chat_template_binds_from_configuration_and_keeps_the_default_parts_it_does_not_set()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gpt2Orleans:Models:0"] = "qa=./qa",
            ["Gpt2Orleans:ChatTemplates:qa:User"] = "Q: {content}\n",
            ["Gpt2Orleans:ChatTemplates:qa:AssistantPrefix"] = "A:",
            ["Gpt2Orleans:ChatTemplates:qa:Stop:0"] = "\nQ:",
        }).Build();
        var settings = configuration.GetSection(SiloSettings.Section).Get<SiloSettings>()!;
        var template = settings.ChatTemplates["qa"];
        Assert.Equal(["\nQ:"], template.Stop);
        Assert.Equal(ChatTemplate.Default.System, template.System);
        Assert.Equal("Be brief.\nQ: Hi?\nA: Hello.\nQ: Why?\nA:",
            template.Render([("system", "Be brief."), ("user", "Hi?"), ("assistant", "Hello."), ("user", "Why?")]));
        Assert.Equal("Hello.", template.ReplyText(" Hello.\nQ: more"));
    }

    [Fact]
    public void A_chat_template_without_its_content_slot_or_for_an_unserved_model_is_refused()
    {
        var settings = new SiloSettings { Models = ["qa=./qa"], ChatTemplates = { ["qa"] = new ChatTemplate { User = "Q: " } } };
        Assert.Contains("User must contain {content}", Assert.Throws<ArgumentException>(settings.Validate).Message);
        settings.ChatTemplates = new() { ["other"] = new ChatTemplate() };
        Assert.Contains("model 'other', which this silo does not serve", Assert.Throws<ArgumentException>(settings.Validate).Message);
    }
}
