using Prometheus;

namespace Gpt2Orleans.Gateway.Metrics;

/// <summary><c>GET /metrics</c>: the cluster's gauges refreshed, then everything in Prometheus' text format.</summary>
public static class MetricsEndpoint
{
    public static async Task Handle(HttpContext context, ClusterGauges gauges)
    {
        await gauges.RefreshAsync(context.RequestAborted);
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await Prometheus.Metrics.DefaultRegistry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
    }
}
