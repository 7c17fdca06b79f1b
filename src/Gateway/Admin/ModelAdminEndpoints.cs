using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Gateway.OpenAi;
using Gpt2Orleans.Grains;
using Gpt2Orleans.Grains.Routing;

namespace Gpt2Orleans.Gateway.Admin;

/// <summary>
/// Model administration under <c>/admin/models</c>: register a model (it loads where there is room on its first
/// request), update it (a new source, dtype or quantization is a new version, swapped in without failing a request),
/// list every model with its replicas (where, which version, state, load, bytes) and counters, unload one
/// (it loads again when asked for), and delete one. Unlike <c>/v1/models</c>, this shows sources.
/// </summary>
public static class ModelAdminEndpoints
{
    public static void Map(RouteGroupBuilder admin)
    {
        admin.MapPost("/models", Register);
        admin.MapGet("/models", List);
        admin.MapGet("/models/{name}", Get);
        admin.MapPut("/models/{name}", Update);
        admin.MapPost("/models/{name}/unload", Unload);
        admin.MapDelete("/models/{name}", Delete);
    }

    /// <summary>
    /// <c>{"name", "source", "heads", "device", "dtype", "quantization": {"method", "group_size"}, "min_replicas",
    /// "max_replicas", "silos", "memory_mb", "tenant"}</c>: only name and source are required.
    /// </summary>
    public static async Task<IResult> Register(HttpContext context, IClusterClient cluster, ModelRouter router)
    {
        var fields = RequestFields.Parse(await RequestFields.ReadBodyAsync(context));
        string name = GrainKeys.ValidId(fields.RequiredString("name"), "name");
        var stored = await Catalog(cluster).AddModel(Definition(name, fields));
        router.Invalidate();
        return Results.Json(await Describe(cluster, stored.Name), statusCode: StatusCodes.Status201Created);
    }

    /// <summary>The same fields as <see cref="Register"/> (all but source optional: a field left out keeps its value).</summary>
    public static async Task<IResult> Update(HttpContext context, string name, IClusterClient cluster, ModelRouter router)
    {
        var old = (await Existing(cluster, name)).Definition;
        if (old.Static) throw ApiException.BadRequest($"model '{name}' was given to its silos at start (--model): restart them to change it", "name");
        var fields = RequestFields.Parse(await RequestFields.ReadBodyAsync(context));
        await Catalog(cluster).UpdateModel(Definition(name, fields, old));
        router.Invalidate(); // this gateway's next request sees the new version at once (others within their list's second)
        return Results.Json(await Describe(cluster, name));
    }

    public static async Task<IResult> List(IClusterClient cluster) =>
        Results.Json(new { @object = "list", data = (await Catalog(cluster).ListModels()).Select(ToObject) });

    public static async Task<IResult> Get(string name, IClusterClient cluster) => Results.Json(ToObject(await Existing(cluster, name)));

    public static async Task<IResult> Unload(string name, IClusterClient cluster, ModelRouter router)
    {
        await Registered(cluster, name);
        await Catalog(cluster).UnloadModel(name);
        router.Invalidate();
        return Results.Json(await Describe(cluster, name));
    }

    public static async Task<IResult> Delete(string name, IClusterClient cluster, ModelRouter router)
    {
        await Registered(cluster, name);
        await Catalog(cluster).RemoveModel(name);
        router.Invalidate();
        return Results.Json(new { id = name, @object = "model.deleted", deleted = true });
    }

    private static ModelDefinition Definition(string name, RequestFields fields, ModelDefinition? old = null)
    {
        var quantization = fields.Get("quantization") is { } q ? Quantization(q) : old?.Quantization;
        long? memoryMb = fields.Get("memory_mb") is null ? null : fields.Integer("memory_mb", 1, 1 << 24);
        return new ModelDefinition(name, old is null ? fields.RequiredString("source") : fields.String("source") ?? old.Source,
            fields.Strings("heads", 8) ?? old?.Heads ?? [], fields.String("device") ?? old?.Device ?? "cpu", old?.ChatTemplate,
            fields.String("dtype") ?? old?.DType ?? "float32", quantization)
        {
            MinReplicas = fields.Integer("min_replicas", 0, 64) ?? old?.MinReplicas ?? 0,
            MaxReplicas = fields.Integer("max_replicas", 1, 64) ?? old?.MaxReplicas ?? 1,
            PinnedSilos = fields.Strings("silos", 64) ?? old?.PinnedSilos,
            // Left out on an update: estimated again, since a new source has other files.
            MemoryBytes = memoryMb is { } mb ? mb << 20 : null,
            Tenant = fields.String("tenant") ?? old?.Tenant,
        };
    }

    /// <summary><c>{"method": "int8" | "int4" | "nf4", "group_size": 32}</c> (or just the method as a string).</summary>
    private static WeightQuantization Quantization(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.String) return Parsed(value.GetString()!, null);
        if (value.ValueKind != JsonValueKind.Object) throw RequestFields.Wrong("quantization", "an object or a method name");
        var fields = new RequestFields(value);
        return Parsed(fields.RequiredString("method"), fields.Integer("group_size", 32, 1 << 16));

        // The catalog checks the method and group size, and names what is wrong.
        static WeightQuantization Parsed(string method, int? groupSize) =>
            new(method, method switch { "int8" => 8, "int4" or "nf4" => 4, _ => 0 }, groupSize ?? 32);
    }

    private static ICatalogGrain Catalog(IClusterClient cluster) => cluster.GetGrain<ICatalogGrain>(GrainKeys.CatalogKey);

    private static async Task<ModelInfo> Existing(IClusterClient cluster, string name) =>
        (GrainKeys.IsValidId(name) ? (await Catalog(cluster).ListModels()).FirstOrDefault(m => m.Definition.Name == name) : null)
            ?? throw ApiException.NotFound($"model '{name}' does not exist", "name");

    private static async Task Registered(IClusterClient cluster, string name)
    {
        if ((await Existing(cluster, name)).Definition.Static)
            throw ApiException.BadRequest($"model '{name}' was given to its silos at start (--model): it stays while they run", "name");
    }

    private static async Task<object> Describe(IClusterClient cluster, string name) => ToObject(await Existing(cluster, name));

    private static object ToObject(ModelInfo m) => new
    {
        id = m.Definition.Name, @object = "model", version = m.Definition.Version, source = m.Definition.Source, heads = m.Definition.Heads,
        device = m.Definition.Device, dtype = m.Definition.DType,
        quantization = m.Definition.Quantization is { } q ? new { method = q.Method, bits = q.Bits, group_size = q.GroupSize } : null,
        min_replicas = m.Definition.MinReplicas, max_replicas = m.Definition.MaxReplicas, silos = m.Definition.PinnedSilos,
        memory_mb = m.Definition.MemoryBytes is { } bytes ? bytes >> 20 : (long?)null, tenant = m.Definition.Tenant,
        pinned = m.Definition.Static, state = m.State, error = m.Error,
        replicas = m.Replicas.Select(r => new
        {
            silo = r.Silo, version = r.Version, state = r.State, running = r.Running, waiting = r.Waiting, kept = r.Kept,
            memory_mb = r.Bytes >> 20, last_used = r.LastUsed.ToUnixTimeSeconds(), error = r.Error,
        }),
        counters = new { loads = m.Counters.Loads, reloads = m.Counters.Reloads, evictions = m.Counters.Evictions, failures = m.Counters.Failures },
    };
}
