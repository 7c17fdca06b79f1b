using Prometheus;

namespace Gpt2Orleans.Gateway.Metrics;

/// <summary>
/// <c>GET /metrics</c>: the cluster's gauges refreshed, then everything in Prometheus' text format, open to any
/// scraper and so holding no tenant id; <c>GET /admin/metrics</c>: the per-tenant series, to the admin key.
/// </summary>
public static class MetricsEndpoint
{
    public static async Task HandleTenants(HttpContext context, Admin.AdminAuthentication admin)
    {
        admin.Authorize(context);
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await GatewayMetrics.TenantRegistry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
    }

    public static async Task Handle(HttpContext context, ClusterGauges gauges)
    {
        await gauges.RefreshAsync(context.RequestAborted);
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await Prometheus.Metrics.DefaultRegistry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
        await context.Response.WriteAsync(await VllmNamed(context.RequestAborted), context.RequestAborted);
    }

    /// <summary>The vLLM-named series (<see cref="GatewayMetrics.VllmRegistry"/>) with their prefix vllm_ written as vLLM's vllm:.</summary>
    private static async Task<string> VllmNamed(CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await GatewayMetrics.VllmRegistry.CollectAndExportAsTextAsync(buffer, cancellationToken);
        var lines = System.Text.Encoding.UTF8.GetString(buffer.ToArray()).Split('\n');
        for (int i = 0; i < lines.Length; i++)
            foreach (var start in new[] { "vllm_", "# HELP vllm_", "# TYPE vllm_" })
                if (lines[i].StartsWith(start, StringComparison.Ordinal)) { lines[i] = start[..^1] + ":" + lines[i][start.Length..]; break; }
        return string.Join('\n', lines);
    }
}
