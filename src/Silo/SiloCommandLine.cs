namespace Gpt2Orleans.Silo;

/// <summary>
/// The command line as configuration: <c>--model NAME=SOURCE</c> may repeat (it becomes Gpt2Orleans:Models:0, :1, …),
/// the other switches map to one setting each; anything else (e.g. <c>--urls</c>) passes through to the host.
/// Written here because Microsoft.Extensions.Configuration's command-line provider keeps only the last of a repeated switch.
/// </summary>
public static class SiloCommandLine
{
    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--clustering"] = nameof(SiloSettings.Clustering),
        ["--cluster-id"] = nameof(SiloSettings.ClusterId),
        ["--service-id"] = nameof(SiloSettings.ServiceId),
        ["--redis"] = nameof(SiloSettings.Redis),
        ["--adonet-invariant"] = nameof(SiloSettings.AdoNetInvariant),
        ["--adonet-connection-string"] = nameof(SiloSettings.AdoNetConnectionString),
        ["--silo-port"] = nameof(SiloSettings.SiloPort),
        ["--gateway-port"] = nameof(SiloSettings.GatewayPort),
        ["--primary-silo-port"] = nameof(SiloSettings.PrimarySiloPort),
        ["--storage"] = nameof(SiloSettings.Storage),
        ["--data"] = nameof(SiloSettings.DataDirectory),
        ["--blob-connection-string"] = nameof(SiloSettings.BlobConnectionString),
        ["--blob-container"] = nameof(SiloSettings.BlobContainer),
        ["--device"] = nameof(SiloSettings.Device),
        ["--dtype"] = nameof(SiloSettings.DType),
        ["--kv-cache-mb"] = nameof(SiloSettings.KvCacheMegabytes),
        ["--max-running-sequences"] = nameof(SiloSettings.MaxRunningSequences),
        ["--max-waiting-requests"] = nameof(SiloSettings.MaxWaitingRequests),
        ["--drain-seconds"] = nameof(SiloSettings.DrainSeconds),
        ["--spill-kv"] = nameof(SiloSettings.SpillKv),
        ["--batch-invariant"] = nameof(SiloSettings.BatchInvariant),
    };

    /// <summary>Splits the arguments into settings (configuration keys) and the rest.</summary>
    public static (Dictionary<string, string?> Settings, string[] Others) Parse(IReadOnlyList<string> args)
    {
        var settings = new Dictionary<string, string?>();
        var rest = new List<string>();
        int models = 0;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string? inline = null;
            int equals = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 0 && (arg[..equals] == "--model" || Switches.ContainsKey(arg[..equals])))
            {
                inline = arg[(equals + 1)..];
                arg = arg[..equals];
            }
            bool known = arg == "--model" || Switches.ContainsKey(arg);
            if (!known) { rest.Add(args[i]); continue; }
            string value = inline ?? (i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value"));
            string key = arg == "--model" ? $"{nameof(SiloSettings.Models)}:{models++}" : Switches[arg];
            settings[$"{SiloSettings.Section}:{key}"] = value;
        }
        return (settings, rest.ToArray());
    }
}
