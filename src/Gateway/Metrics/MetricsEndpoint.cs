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
    }
}
