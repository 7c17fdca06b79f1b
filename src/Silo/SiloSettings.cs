namespace Gpt2Orleans.Silo;

/// <summary>
/// The silo's configuration (section "Gpt2Orleans" of appsettings.json, environment variables
/// <c>Gpt2Orleans__Clustering=redis</c>, or the command line). Every value is checked at start-up and a bad one stops
/// the silo with a message naming it.
/// </summary>
public sealed class SiloSettings
{
    public const string Section = "Gpt2Orleans";

    /// <summary>localhost (default, one machine), redis, adonet or kubernetes.</summary>
    public string Clustering { get; set; } = "localhost";
    public string ClusterId { get; set; } = "gpt2orleans";
    public string ServiceId { get; set; } = "gpt2orleans";
    /// <summary>Redis connection string (clustering redis, and kubernetes: the membership table), e.g. "127.0.0.1:6379".</summary>
    public string? Redis { get; set; }
    /// <summary>ADO.NET provider invariant and connection string (clustering=adonet), e.g. Npgsql.</summary>
    public string AdoNetInvariant { get; set; } = "Npgsql";
    public string? AdoNetConnectionString { get; set; }
    /// <summary>With redis clustering, the host name or IP other silos and clients reach this one at (a container's name); unset: loopback, one machine.</summary>
    public string? AdvertisedHost { get; set; }
    public int SiloPort { get; set; } = 11111;
    public int GatewayPort { get; set; } = 30000;
    /// <summary>With localhost clustering, the silo port of the first silo (the others join it).</summary>
    public int? PrimarySiloPort { get; set; }

    /// <summary>file (default, under <see cref="DataDirectory"/>) or azureblob.</summary>
    public string Storage { get; set; } = "file";
    public string DataDirectory { get; set; } = "./data";
    public string? BlobConnectionString { get; set; }
    public string BlobContainer { get; set; } = "gpt2orleans";

    /// <summary>NAME=SOURCE entries; none means the default model (random GPT-2 small).</summary>
    public List<string> Models { get; set; } = [];
    /// <summary>Model name → its chat template (see <see cref="Grains.ChatTemplate"/>); parts left out keep the default.</summary>
    public Dictionary<string, Grains.ChatTemplate> ChatTemplates { get; set; } = [];
    public string Device { get; set; } = "cpu";
    public string DType { get; set; } = "float32";
    /// <summary>int8, int4 or nf4: quantize every model's projections and LM head at load (a checkpoint written by <c>gpt2o quantize</c> is served as it is).</summary>
    public string? Quantize { get; set; }
    public int GroupSize { get; set; } = Inference.Quantization.QuantizationConfig.DefaultGroupSize;
    /// <summary>The KV cache's dtype (float32, bfloat16, float16); unset: each model's compute dtype.</summary>
    public string? KvDType { get; set; }
    public long KvCacheMegabytes { get; set; } = 512;
    /// <summary>Megabytes this silo may hold in model weights and KV pools (registered models load and are evicted within it); unset: half the machine's memory.</summary>
    public long? ModelMemoryMegabytes { get; set; }
    public int MaxRunningSequences { get; set; } = 64;
    /// <summary>Requests that may wait for the engine before new ones get 429 with Retry-After.</summary>
    public int MaxWaitingRequests { get; set; } = 1024;
    /// <summary>Whether a request's output is the same however the engine batches it (a seeded sample reproduces under load); costs compute on batches under 16 rows.</summary>
    public bool BatchInvariant { get; set; }
    /// <summary>Whether deactivating sessions spill their KV to this silo's disk (under the data directory) for a faster next turn.</summary>
    public bool SpillKv { get; set; } = true;
    /// <summary>On shutdown, how long running streams may take to finish before the silo stops anyway.</summary>
    public int DrainSeconds { get; set; } = 30;

    public Dictionary<string, string> ParseModels()
    {
        var models = new Dictionary<string, string>();
        foreach (var entry in Models.Count == 0 ? [$"{Inference.Checkpoints.DefaultModel.Name}=default"] : Models)
        {
            int equals = entry.IndexOf('=');
            if (equals <= 0 || equals == entry.Length - 1)
                throw new ArgumentException($"--model '{entry}': expected NAME=SOURCE (a folder, blob:container/path, a hub repo id, or default)");
            string name = entry[..equals].Trim(), source = entry[(equals + 1)..].Trim();
            if (!Grains.GrainKeys.IsValidId(name)) throw new ArgumentException($"--model '{entry}': the name '{name}' may only hold letters, digits, '.', '_' and '-'");
            if (!models.TryAdd(name, source)) throw new ArgumentException($"--model: '{name}' is given twice");
        }
        return models;
    }

    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new ArgumentException(message);
        }
        Require(Clustering is "localhost" or "redis" or "adonet" or "kubernetes", $"clustering '{Clustering}': use localhost, redis, adonet or kubernetes");
        Require(Clustering != "redis" || !string.IsNullOrWhiteSpace(Redis), "clustering redis needs --redis HOST:PORT (or Gpt2Orleans__Redis)");
        Require(Clustering != "kubernetes" || !string.IsNullOrWhiteSpace(Redis),
            "clustering kubernetes needs --redis HOST:PORT (or Gpt2Orleans__Redis): Orleans' Kubernetes hosting watches the pods but keeps no membership table, Redis does");
        Require(Clustering != "adonet" || !string.IsNullOrWhiteSpace(AdoNetConnectionString), "clustering adonet needs --adonet-connection-string");
        Require(AdvertisedHost is null || (Clustering == "redis" && Uri.CheckHostName(AdvertisedHost) != UriHostNameType.Unknown),
            $"advertised-host '{AdvertisedHost}': a host name or IP, with clustering redis (kubernetes advertises the pod's IP)");
        Require(Storage is "file" or "azureblob", $"storage '{Storage}': use file or azureblob");
        Require(Storage != "azureblob" || !string.IsNullOrWhiteSpace(BlobConnectionString), "storage azureblob needs --blob-connection-string");
        Require(SiloPort is > 0 and < 65536, $"silo-port {SiloPort}: must be a TCP port");
        Require(GatewayPort is > 0 and < 65536, $"gateway-port {GatewayPort}: must be a TCP port");
        Require(KvCacheMegabytes > 0, $"kv-cache-mb {KvCacheMegabytes}: must be positive");
        Require(ModelMemoryMegabytes is null or > 0, $"model-memory-mb {ModelMemoryMegabytes}: must be positive");
        Require(MaxRunningSequences > 0, $"max-running-sequences {MaxRunningSequences}: must be positive");
        Require(MaxWaitingRequests > 0, $"max-waiting-requests {MaxWaitingRequests}: must be positive");
        Require(DrainSeconds >= 0, $"drain-seconds {DrainSeconds}: must not be negative");
        Require(Device == "cpu" || Device.StartsWith("cuda", StringComparison.Ordinal), $"device '{Device}': use cpu, cuda or cuda:N");
        Inference.Checkpoints.DeviceSpec.ParseDType(DType, "dtype");
        if (KvDType is not null) Inference.Checkpoints.DeviceSpec.ParseDType(KvDType, "kv-dtype");
        Require(!ParseModels().Values.Any(v => v.StartsWith("blob:", StringComparison.Ordinal)) || !string.IsNullOrWhiteSpace(BlobConnectionString),
            "a blob: model source needs --blob-connection-string");
        Grains.Models.ModelHostOptions.ValidateChatTemplates(ParseModels(), ChatTemplates);
    }
}
