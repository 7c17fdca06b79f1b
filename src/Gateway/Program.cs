using Gpt2Orleans.Gateway;
using Orleans.Configuration;
using StackExchange.Redis;

// gpt2o-gateway, standalone: an Orleans client of a cluster (Redis clustering: --redis HOST:PORT, --cluster-id),
// serving the OpenAI-compatible API on --urls. On one machine the silo co-hosts the same gateway instead.
var builder = WebApplication.CreateBuilder(args);
string redis = builder.Configuration["redis"] ?? throw new ArgumentException("--redis HOST:PORT is needed to find the cluster");
builder.UseOrleansClient(client =>
{
    client.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
    client.AddActivityPropagation(); // grain calls join the HTTP request's trace
    client.Configure<ClusterOptions>(o =>
    {
        o.ClusterId = builder.Configuration["cluster-id"] ?? "gpt2orleans";
        o.ServiceId = builder.Configuration["service-id"] ?? "gpt2orleans";
    });
});
builder.Services.AddGpt2OrleansGateway();
Gpt2Orleans.Gateway.Telemetry.Tracing.AddGpt2OrleansTracing(builder.Services, builder.Configuration);
var app = builder.Build();
app.MapGpt2OrleansGateway();
app.Run();
