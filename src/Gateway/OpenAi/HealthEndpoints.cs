using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// <c>/healthz</c>: the process answers. <c>/readyz</c>: every model the catalog lists as served has a loaded
/// worker on each of its silos (asked with a short deadline, so a model still loading reads as not ready).
/// </summary>
public static class HealthEndpoints
{
    public static readonly TimeSpan WorkerDeadline = TimeSpan.FromSeconds(2);

    public static IResult Health() => Results.Ok(new { status = "ok" });

    public static async Task<IResult> Ready(IClusterClient cluster)
    {
        var waiting = new List<string>();
        try
        {
            foreach (var model in await cluster.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey).ListModels().WaitAsync(WorkerDeadline))
                foreach (var silo in model.Silos)
                {
                    var worker = cluster.GetGrain<IModelGrain>(GrainKeys.ModelWorker(model.Definition.Name, silo, model.Definition.Version));
                    try
                    {
                        if (!(await worker.GetStatus().WaitAsync(WorkerDeadline)).Loaded) waiting.Add($"{model.Definition.Name}@{silo}");
                    }
                    catch (Exception e) when (e is TimeoutException or Gpt2OrleansException)
                    {
                        waiting.Add($"{model.Definition.Name}@{silo}");
                    }
                }
        }
        catch (TimeoutException)
        {
            waiting.Add("catalog");
        }
        return waiting.Count == 0
            ? Results.Ok(new { status = "ready" })
            : Results.Json(new { status = "loading", waiting }, statusCode: StatusCodes.Status503ServiceUnavailable);
    }
}
