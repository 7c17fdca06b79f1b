namespace Gpt2Orleans.Silo;

/// <summary>
/// The command line as configuration: <c>--model NAME=SOURCE</c> may repeat (it becomes Gpt2Orleans:Models:0, :1, …),
/// the other switches map to one setting each; the host's own (<see cref="HostSwitches"/>, e.g. <c>--urls</c>) and any
/// configuration key written as a path (<c>--Logging:LogLevel:Default Warning</c>) pass through to the host. Anything
/// else is an error naming it: a typo such as <c>--quantise</c> must not start a silo that does something else than asked.
/// Written here because Microsoft.Extensions.Configuration's command-line provider keeps only the last of a repeated
/// switch, and accepts any switch at all.
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
        ["--advertised-host"] = nameof(SiloSettings.AdvertisedHost),
        ["--silo-port"] = nameof(SiloSettings.SiloPort),
        ["--gateway-port"] = nameof(SiloSettings.GatewayPort),
        ["--primary-silo-port"] = nameof(SiloSettings.PrimarySiloPort),
        ["--storage"] = nameof(SiloSettings.Storage),
        ["--data"] = nameof(SiloSettings.DataDirectory),
        ["--blob-connection-string"] = nameof(SiloSettings.BlobConnectionString),
        ["--blob-container"] = nameof(SiloSettings.BlobContainer),
        ["--device"] = nameof(SiloSettings.Device),
        ["--dtype"] = nameof(SiloSettings.DType),
        ["--quantize"] = nameof(SiloSettings.Quantize),
        ["--group-size"] = nameof(SiloSettings.GroupSize),
        ["--kv-dtype"] = nameof(SiloSettings.KvDType),
        ["--kv-cache-mb"] = nameof(SiloSettings.KvCacheMegabytes),
        ["--model-memory-mb"] = nameof(SiloSettings.ModelMemoryMegabytes),
        ["--max-running-sequences"] = nameof(SiloSettings.MaxRunningSequences),
        ["--max-waiting-requests"] = nameof(SiloSettings.MaxWaitingRequests),
        ["--drain-seconds"] = nameof(SiloSettings.DrainSeconds),
        ["--spill-kv"] = nameof(SiloSettings.SpillKv),
        ["--batch-invariant"] = nameof(SiloSettings.BatchInvariant),
    };

    /// <summary>Switches the host reads itself: ASP.NET Core's, and the keys the gateway reads from configuration.</summary>
    public static readonly IReadOnlySet<string> HostSwitches = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "--urls", "--environment", "--contentRoot", "--applicationName", "--GPT2O_API_KEY", "--GPT2O_ADMIN_KEY",
    };

    /// <summary>Splits the arguments into settings (configuration keys) and the host's; throws on anything else.</summary>
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
            if (!known)
            {
                string name = equals > 0 ? arg[..equals] : arg;
                if (!name.StartsWith("--", StringComparison.Ordinal))
                    throw new ArgumentException($"unexpected argument '{arg}': settings are switches (--name value)");
                if (!HostSwitches.Contains(name) && !name.Contains(':'))
                    throw new ArgumentException($"unknown switch '{name}'; the silo's switches are --model, {string.Join(", ", Switches.Keys)}, " +
                        $"{string.Join(", ", HostSwitches)} and configuration keys as --Section:Key value");
                rest.Add(args[i]);
                if (equals < 0 && i + 1 < args.Count) rest.Add(args[++i]); // its value
                continue;
            }
            string value = inline ?? (i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value"));
            string key = arg == "--model" ? $"{nameof(SiloSettings.Models)}:{models++}" : Switches[arg];
            settings[$"{SiloSettings.Section}:{key}"] = value;
        }
        return (settings, rest.ToArray());
    }
}
