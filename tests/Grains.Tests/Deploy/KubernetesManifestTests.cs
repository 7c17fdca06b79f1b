using System.Diagnostics;
using System.Text.Json;
using Gpt2Orleans.Silo;
using Gpt2Orleans.Tests.Shared;
using k8s;
using k8s.Models;

namespace Gpt2Orleans.Grains.Tests.Deploy;

/// <summary>
/// deploy/k8s as a cluster would see it: each overlay rendered by the real <c>kubectl kustomize</c>, every object read
/// by the KubernetesClient models strictly (a misspelt or misplaced field fails), and the mistakes that break a
/// cluster silently checked: the silos' Role grants what Orleans' Kubernetes hosting calls, probes point at routes the
/// app maps, the grace period outlasts the drain, every Secret and ConfigMap referenced exists, requests are set.
/// </summary>
public sealed class KubernetesManifestTests
{
    public static TheoryData<string> Overlays => new() { "cpu", "gpu" };

    private static string Kubectl => Repository.Require("/usr/bin/kubectl", "run ./test.sh (it installs Debian's kubernetes-client)");

    private static List<object> Render(string overlay)
    {
        var info = new ProcessStartInfo(Kubectl) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "kustomize", Path.Combine(Repository.Root, "deploy", "k8s", "overlays", overlay) }) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(60_000), "kubectl kustomize did not finish within 60 s");
        Assert.True(process.ExitCode == 0, $"kubectl kustomize {overlay} failed: {error.Result}");
        return KubernetesYaml.LoadAllFromString(output.Result, strict: true);
    }

    private static T Single<T>(List<object> objects, string name) where T : IMetadata<V1ObjectMeta> =>
        Assert.Single(objects.OfType<T>(), o => o.Metadata.Name == name);

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Every_object_is_valid_and_the_silos_role_grants_what_kubernetes_hosting_needs(string overlay)
    {
        var objects = Render(overlay);
        Assert.All(objects, o => Assert.IsAssignableFrom<IKubernetesObject>(o));
        var silo = Single<V1Deployment>(objects, "gpt2o-silo");
        var pod = silo.Spec.Template;

        // Orleans' Kubernetes hosting: the two labels, the five variables, and the API calls its agent makes.
        Assert.Equal("gpt2orleans", pod.Metadata.Labels["orleans/serviceId"]);
        Assert.Equal("gpt2orleans", pod.Metadata.Labels["orleans/clusterId"]);
        var container = Assert.Single(pod.Spec.Containers);
        var env = container.Env.ToDictionary(e => e.Name);
        foreach (var name in new[] { "POD_NAME", "POD_NAMESPACE", "POD_IP", "ORLEANS_SERVICE_ID", "ORLEANS_CLUSTER_ID" }) Assert.True(env.ContainsKey(name), $"{name} is not set");
        Assert.Equal("status.podIP", env["POD_IP"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("metadata.labels['orleans/clusterId']", env["ORLEANS_CLUSTER_ID"].ValueFrom.FieldRef.FieldPath);
        var role = Single<V1Role>(objects, "gpt2o-silo");
        var pods = Assert.Single(role.Rules, r => r.Resources.Contains("pods") && r.ApiGroups.Contains(""));
        Assert.Superset(new HashSet<string> { "get", "list", "watch", "patch" }, pods.Verbs.ToHashSet());
        var binding = Single<V1RoleBinding>(objects, "gpt2o-silo");
        Assert.Equal(role.Metadata.Name, binding.RoleRef.Name);
        Assert.Contains(binding.Subjects, s => s.Kind == "ServiceAccount" && s.Name == pod.Spec.ServiceAccountName);
        Single<V1ServiceAccount>(objects, pod.Spec.ServiceAccountName);

        // The settings the silo reads: kubernetes clustering with Redis for membership, storage in blobs, valid as a whole.
        var settings = SiloSettingsOf(objects, container);
        Assert.Equal("kubernetes", settings.Clustering);
        Assert.Equal("azureblob", settings.Storage);
        settings.Validate(); // throws, naming the setting, if the ConfigMap and the environment disagree with the silo

        // Drain: SIGTERM comes after preStop, and the host may take DrainSeconds + 30 s (SiloHosting) to stop.
        int preStop = int.Parse(container.Lifecycle.PreStop.Exec.Command.Last());
        Assert.True(pod.Spec.TerminationGracePeriodSeconds > settings.DrainSeconds + 30 + preStop,
            $"terminationGracePeriodSeconds {pod.Spec.TerminationGracePeriodSeconds} does not outlast a drain of {settings.DrainSeconds} s + 30 s + the {preStop} s preStop");

        Assert.Single(objects.OfType<V1PodDisruptionBudget>(), b => b.Spec.Selector.MatchLabels.All(l => pod.Metadata.Labels[l.Key] == l.Value));
        var hpa = Single<V2HorizontalPodAutoscaler>(objects, "gpt2o-silo");
        Assert.Equal(silo.Metadata.Name, hpa.Spec.ScaleTargetRef.Name);
        Assert.True(hpa.Spec.MinReplicas >= 2, "one silo left alone cannot roll or survive a node");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Probes_secrets_config_maps_and_resource_requests_are_real(string overlay)
    {
        var objects = Render(overlay);
        var secrets = objects.OfType<V1Secret>().ToDictionary(s => s.Metadata.Name);
        var configMaps = objects.OfType<V1ConfigMap>().ToDictionary(c => c.Metadata.Name);
        var routes = new[] { "/healthz", "/readyz" }; // mapped by GatewayHosting, in the silo and the standalone gateway
        foreach (var deployment in objects.OfType<V1Deployment>())
        {
            var spec = deployment.Spec.Template.Spec;
            foreach (var container in spec.Containers)
            {
                string where = $"{deployment.Metadata.Name}/{container.Name}";
                Assert.True(container.Resources?.Requests is { Count: > 0 } r && r.ContainsKey("cpu") && r.ContainsKey("memory"), $"{where} sets no cpu and memory requests");
                var ports = container.Ports.Select(p => p.Name).ToHashSet();
                foreach (var probe in new[] { container.ReadinessProbe, container.LivenessProbe, container.StartupProbe }.Where(p => p is not null))
                {
                    if (probe.HttpGet is { } http)
                    {
                        Assert.Contains(http.Path, routes);
                        Assert.Contains(http.Port.Value, ports);
                    }
                    else Assert.Contains(probe.TcpSocket.Port.Value, ports);
                }
                if (deployment.Metadata.Name.StartsWith("gpt2o-", StringComparison.Ordinal) && deployment.Metadata.Name != "gpt2o-redis")
                {
                    Assert.Equal("/readyz", container.ReadinessProbe.HttpGet.Path);
                    Assert.Equal("/healthz", container.LivenessProbe.HttpGet.Path);
                }
                foreach (var variable in container.Env ?? [])
                {
                    if (variable.ValueFrom?.SecretKeyRef is { } secret)
                        Assert.True(secrets.TryGetValue(secret.Name, out var s) && s.StringData.ContainsKey(secret.Key), $"{where}: {variable.Name} reads secret {secret.Name}/{secret.Key}, which the base does not define");
                    if (variable.ValueFrom?.ConfigMapKeyRef is { } map)
                        Assert.True(configMaps.TryGetValue(map.Name, out var c) && c.Data.ContainsKey(map.Key), $"{where}: {variable.Name} reads config map {map.Name}/{map.Key}");
                }
            }
            foreach (var volume in spec.Volumes ?? [])
                if (volume.ConfigMap is { } map) Assert.True(configMaps.ContainsKey(map.Name), $"{deployment.Metadata.Name} mounts config map {map.Name}, which does not exist");
        }
        var gateway = Single<V1Service>(objects, "gpt2o-gateway");
        Assert.All(gateway.Spec.Selector, l => Assert.Equal(l.Value, Single<V1Deployment>(objects, "gpt2o-gateway").Spec.Template.Metadata.Labels[l.Key]));
    }

    [Fact]
    public void The_gpu_overlay_asks_for_a_gpu_node_and_runs_the_engine_on_cuda()
    {
        var silo = Single<V1Deployment>(Render("gpu"), "gpt2o-silo").Spec.Template.Spec;
        var container = Assert.Single(silo.Containers);
        Assert.Equal("1", container.Resources.Limits["nvidia.com/gpu"].ToString());
        Assert.Equal("true", silo.NodeSelector["nvidia.com/gpu.present"]);
        Assert.Contains(silo.Tolerations, t => t.Key == "nvidia.com/gpu" && t.Effect == "NoSchedule");
        Assert.Equal("cuda", container.Env.Single(e => e.Name == "Gpt2Orleans__Device").Value);
        Assert.StartsWith("gpt2orleans/silo-cuda", container.Image);
        var cpu = Assert.Single(Single<V1Deployment>(Render("cpu"), "gpt2o-silo").Spec.Template.Spec.Containers);
        Assert.False(cpu.Resources.Limits?.ContainsKey("nvidia.com/gpu") ?? false);
        Assert.Equal("cpu", cpu.Env.Single(e => e.Name == "Gpt2Orleans__Device").Value);
    }

    [Fact]
    public void The_autoscalers_metric_is_the_one_the_prometheus_adapter_rule_defines_over_an_exported_series()
    {
        var hpa = Single<V2HorizontalPodAutoscaler>(Render("cpu"), "gpt2o-silo");
        string metric = Assert.Single(hpa.Spec.Metrics).External.Metric.Name;
        string rules = File.ReadAllText(Path.Combine(Repository.Root, "deploy", "k8s", "prometheus-adapter", "values.yaml"));
        Assert.Contains($"as: {metric}", rules);
        Assert.Contains("gpt2o_sequences{state=\"waiting\"", rules);
        Assert.Equal("gpt2o_sequences", Gateway.Metrics.GatewayMetrics.Sequences.Name); // the series the rule reads
    }

    /// <summary>The silo's settings as the pod gets them: the mounted appsettings JSON, then the container's plain environment values.</summary>
    private static SiloSettings SiloSettingsOf(List<object> objects, V1Container container)
    {
        var mount = Assert.Single(container.VolumeMounts, m => m.MountPath.EndsWith("appsettings.Production.json", StringComparison.Ordinal));
        var pod = objects.OfType<V1Deployment>().Single(d => d.Spec.Template.Spec.Containers.Contains(container)).Spec.Template.Spec;
        var map = objects.OfType<V1ConfigMap>().Single(c => c.Metadata.Name == pod.Volumes.Single(v => v.Name == mount.Name).ConfigMap.Name);
        var section = JsonDocument.Parse(map.Data[mount.SubPath]).RootElement.GetProperty(SiloSettings.Section);
        var settings = section.Deserialize<SiloSettings>()!;
        foreach (var variable in container.Env.Where(e => e.Name.StartsWith(SiloSettings.Section + "__", StringComparison.Ordinal)))
        {
            var property = typeof(SiloSettings).GetProperty(variable.Name[(SiloSettings.Section.Length + 2)..]);
            Assert.True(property is not null, $"{variable.Name} names no silo setting");
            string value = variable.Value ?? $"from-{variable.ValueFrom.SecretKeyRef?.Name ?? variable.ValueFrom.FieldRef.FieldPath}";
            property.SetValue(settings, property.PropertyType == typeof(string) ? value : Convert.ChangeType(value, property.PropertyType));
        }
        return settings;
    }
}
