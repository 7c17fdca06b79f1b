using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Gpt2Orleans.Silo;
using Gpt2Orleans.Tests.Shared;

namespace Gpt2Orleans.Grains.Tests.Deploy;

/// <summary>
/// deploy/docker, checked without a container runtime (there is none here): each image's entry point is the program
/// deploy/local/cluster.sh runs (and <see cref="LocalClusterTests"/> proves), built from the project that produces it;
/// images run as a non-root user with a health check on /healthz from base images pinned to versions (hadolint's
/// rules, as Debian has no hadolint); every setting compose passes is one the silo has.
/// </summary>
public sealed partial class ContainerTests
{
    private static string Docker(string file) => Path.Combine(Repository.Root, "deploy", "docker", file);

    public static TheoryData<string, string> Images => new()
    {
        { "silo.Dockerfile", "Silo" },
        { "silo-cuda.Dockerfile", "Silo" },
        { "gateway.Dockerfile", "Gateway" },
    };

    [Theory]
    [MemberData(nameof(Images))]
    public void The_entry_point_is_the_program_the_local_cluster_runs(string dockerfile, string project)
    {
        string text = File.ReadAllText(Docker(dockerfile));
        var entry = JsonSerializer.Deserialize<string[]>(Assert.Single(EntryPoint().Matches(text)).Groups[1].Value)!;
        string assembly = XDocument.Load(Path.Combine(Repository.Root, "src", project, $"Gpt2Orleans.{project}.csproj")).Descendants("AssemblyName").Single().Value;
        Assert.Equal(["dotnet", $"{assembly}.dll"], entry);
        Assert.Contains($"dotnet publish src/{project} ", text);
        string cluster = File.ReadAllText(Path.Combine(Repository.Root, "deploy", "local", "cluster.sh"));
        Assert.Contains($"publish {project} {assembly}.dll", cluster); // what `up` publishes, then starts as: dotnet "$…_dll"
        Assert.Matches(@"(?m)^USER \S+", text);
        Assert.DoesNotMatch(@"(?m)^USER (root|0)\s*$", text);
        Assert.Matches(@"(?m)^HEALTHCHECK .*http://127\.0\.0\.1:8080/healthz", text);
        if (dockerfile.Contains("cuda")) Assert.Contains("-p:TorchBackend=cuda", text);
        // hadolint is not in Debian, so its rule DL3006/DL3007 here: every base image pinned to a version or a digest.
        var stages = new HashSet<string>();
        foreach (Match from in BaseImage().Matches(text))
        {
            string image = from.Groups[1].Value;
            if (from.Groups[2].Success) stages.Add(from.Groups[2].Value);
            if (stages.Contains(image) && !image.Contains(':')) continue; // an earlier stage
            Assert.Matches(@"(@sha256:[0-9a-f]{64}|:\d[\w.-]*)$", image);
        }
    }

    [Fact]
    public void Compose_passes_only_settings_the_silo_has_and_two_silos_serve_different_models()
    {
        string compose = File.ReadAllText(Docker("compose.yaml"));
        var keys = Setting().Matches(compose).Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.NotEmpty(keys);
        foreach (var key in keys) Assert.True(typeof(SiloSettings).GetProperty(key) is not null, $"compose sets Gpt2Orleans__{key}, which is no silo setting");
        HashSet<string> ModelsOf(string service, string next)
        {
            int start = compose.IndexOf($"\n  {service}:", StringComparison.Ordinal), end = compose.IndexOf($"\n  {next}:", start, StringComparison.Ordinal);
            Assert.True(start >= 0 && end > start, $"compose has no service {service} before {next}");
            return Regex.Matches(compose[start..end], @"Gpt2Orleans__Models__\d+: (\S+)").Select(m => m.Groups[1].Value).ToHashSet();
        }
        var a = ModelsOf("silo-a", "silo-b");
        var b = ModelsOf("silo-b", "gateway");
        Assert.NotEmpty(a);
        Assert.False(a.SetEquals(b), "the two silos serve the same models");
        Assert.True(File.Exists(Path.Combine(Repository.Root, ".dockerignore")), "the build context's .dockerignore (a link to deploy/docker's)");
    }

    [GeneratedRegex(@"(?m)^ENTRYPOINT (\[.*\])\s*$")]
    private static partial Regex EntryPoint();

    [GeneratedRegex(@"(?m)^FROM (\S+)(?: AS (\S+))?\s*$")]
    private static partial Regex BaseImage();

    [GeneratedRegex(@"Gpt2Orleans__([A-Za-z]+)")]
    private static partial Regex Setting();
}
