using System.Net;
using System.Text.Json;
using Gpt2Orleans.Gateway.Tests.Support;
using Gpt2Orleans.Tests.Shared;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>A silo started with alpha only, and folders of tiny models with other weights to register at run time.</summary>
public sealed class ModelAdminFixture : GatewayFixture
{
    private readonly TinyModelFolders _folders = new(ModelFolder);

    protected override IEnumerable<string> SiloArguments => ["--model", $"{Model}={ModelFolder}"];

    public string Weights(int seed) => _folders.Model(seed);

    public string Hostile() => _folders.Hostile();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _folders.Dispose();
    }
}

/// <summary>
/// Models registered, listed, updated (hot swapped under streaming clients), unloaded and deleted through
/// <c>/admin/models</c>; <c>/v1/models</c> shows each one's state to the tenants that may use it, and nothing of where
/// it lives; a model that cannot load is a 503 with Retry-After and its reason; the lifecycle shows in the metrics.
/// </summary>
public sealed class ModelAdminTests(ModelAdminFixture fixture) : IClassFixture<ModelAdminFixture>
{
    private static object Completion(string model, int tokens = 6, bool stream = false) =>
        new { model, prompt = "The cat sat", max_tokens = tokens, min_tokens = tokens, temperature = 0, stream };

    private static async Task<string> Text(HttpResponseMessage response) =>
        (await ReadJson(response)).GetProperty("choices")[0].GetProperty("text").GetString()!;

    private static JsonElement Find(JsonElement list, string id) => list.GetProperty("data").EnumerateArray().Single(m => m.GetProperty("id").GetString() == id);

    [Fact]
    public async Task A_registered_model_loads_on_its_first_request_and_is_listed_with_its_state_but_not_its_source()
    {
        using var admin = fixture.Client(GatewayFixture.AdminKey);
        using var client = fixture.Client();
        string folder = fixture.Weights(1);
        var created = await admin.PostAsync("/admin/models", Json(new { name = "lazy", source = folder, max_replicas = 1 }));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await ReadJson(created);
        Assert.Equal(1, body.GetProperty("version").GetInt32());
        Assert.Equal(folder, body.GetProperty("source").GetString()); // the operator sees it
        Assert.Equal("available", body.GetProperty("state").GetString());
        Assert.True(body.GetProperty("memory_mb").GetInt64() > 0); // estimated from the checkpoint's files
        await ReadError(await admin.PostAsync("/admin/models", Json(new { name = "lazy", source = folder })), HttpStatusCode.Conflict);

        Assert.Equal("available", Find(await ReadJson(await client.GetAsync("/v1/models")), "lazy").GetProperty("state").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(Completion("lazy")))).StatusCode);
        var listed = await ReadJson(await client.GetAsync("/v1/models"));
        var lazy = Find(listed, "lazy");
        Assert.Equal("loaded", lazy.GetProperty("state").GetString());
        Assert.Equal(["lm"], lazy.GetProperty("heads").EnumerateArray().Select(h => h.GetString()));
        Assert.DoesNotContain(folder, listed.GetRawText()); // no server paths for tenants
        Assert.DoesNotContain("/", lazy.GetProperty("id").GetString());

        var adminView = Find(await ReadJson(await admin.GetAsync("/admin/models")), "lazy");
        Assert.Single(adminView.GetProperty("replicas").EnumerateArray());
        Assert.Equal(1, adminView.GetProperty("counters").GetProperty("loads").GetInt32());
        var metrics = await client.GetStringAsync("/metrics");
        Assert.Contains("gpt2o_model_loads_total{model=\"lazy\"} 1", metrics);
        Assert.Contains("gpt2o_model_state{model=\"lazy\",state=\"loaded\"} 1", metrics);

        // Unloaded: it goes, and comes back on the next request.
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/admin/models/lazy/unload", null)).StatusCode);
        await WaitForState(client, "lazy", "available");
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(Completion("lazy")))).StatusCode);
        Assert.Contains("gpt2o_model_evictions_total{model=\"lazy\"} 1", await client.GetStringAsync("/metrics"));

        // Deleted: it is unknown.
        Assert.Equal(HttpStatusCode.OK, (await admin.DeleteAsync("/admin/models/lazy")).StatusCode);
        await ReadError(await client.PostAsync("/v1/completions", Json(Completion("lazy"))), HttpStatusCode.NotFound);
        await ReadError(await admin.DeleteAsync("/admin/models/lazy"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_hot_swap_under_sixteen_streaming_clients_fails_none_and_new_requests_get_the_new_version()
    {
        using var admin = fixture.Client(GatewayFixture.AdminKey);
        using var client = fixture.Client();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/admin/models", Json(new { name = "swapped", source = fixture.Weights(2) }))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/admin/models", Json(new { name = "expected", source = fixture.Weights(3) }))).StatusCode);
        string before = await Text(await client.PostAsync("/v1/completions", Json(Completion("swapped"))));
        string after = await Text(await client.PostAsync("/v1/completions", Json(Completion("expected"))));
        Assert.NotEqual(before, after);

        var started = new CountdownEvent(16);
        var streams = Enumerable.Range(0, 16).Select(async _ =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(Completion("swapped", tokens: 100, stream: true)) };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            int tokens = 0;
            string? finish = null;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: {", StringComparison.Ordinal)) continue;
                var choice = JsonDocument.Parse(line["data: ".Length..]).RootElement.GetProperty("choices")[0];
                if (choice.GetProperty("text").GetString() is { Length: > 0 }) tokens++;
                if (choice.TryGetProperty("finish_reason", out var reason) && reason.ValueKind == JsonValueKind.String) finish = reason.GetString();
                if (tokens == 1) started.Signal();
                await Task.Delay(10); // a slow reader: the stream, and version 1 with it, outlasts the swap
            }
            return finish;
        }).ToList();
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "the streams started");

        var updated = await ReadJson(await admin.PutAsync("/admin/models/swapped", Json(new { source = fixture.Weights(3) })));
        Assert.Equal(2, updated.GetProperty("version").GetInt32());
        Assert.Contains(streams, s => !s.IsCompleted);
        Assert.Equal(after, await Text(await client.PostAsync("/v1/completions", Json(Completion("swapped"))))); // a new request: the new weights
        Assert.All(await Task.WhenAll(streams), finish => Assert.Equal("length", finish)); // every old stream ran to its end

        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (Find(await ReadJson(await admin.GetAsync("/admin/models")), "swapped").GetProperty("replicas").EnumerateArray().Any(r => r.GetProperty("version").GetInt32() == 1))
        {
            Assert.True(DateTime.UtcNow < deadline, "version 1 was not unloaded after its streams ended");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_model_that_cannot_load_is_a_503_with_retry_after_and_its_reason_while_others_serve()
    {
        using var admin = fixture.Client(GatewayFixture.AdminKey);
        using var client = fixture.Client();
        string hostile = fixture.Hostile();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/admin/models", Json(new { name = "hostile", source = hostile }))).StatusCode);
        var response = await client.PostAsync("/v1/completions", Json(Completion("hostile")));
        var error = await ReadError(response, HttpStatusCode.ServiceUnavailable);
        Assert.Contains("failed to load", error.GetProperty("message").GetString());
        Assert.DoesNotContain(hostile, error.GetProperty("message").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/completions", Json(Completion(GatewayFixture.Model)))).StatusCode);

        var failed = await WaitForState(client, "hostile", "failed");
        Assert.Contains("safetensors", failed.GetProperty("error").GetString());
        Assert.DoesNotContain(hostile, failed.GetRawText());
    }

    [Fact]
    public async Task A_private_model_is_visible_and_usable_only_by_its_tenant()
    {
        using var admin = fixture.Client(GatewayFixture.AdminKey);
        string tenant = "owner-" + Guid.NewGuid().ToString("N")[..8];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/admin/tenants", Json(new { id = tenant }))).StatusCode);
        using var owner = fixture.Client((await ReadJson(await admin.PostAsync($"/admin/tenants/{tenant}/keys", null))).GetProperty("key").GetString());
        using var other = fixture.Client();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/admin/models", Json(new { name = "private-ft", source = fixture.Weights(4), tenant }))).StatusCode);

        Assert.Contains("private-ft", (await owner.GetStringAsync("/v1/models")));
        Assert.Equal(HttpStatusCode.OK, (await owner.PostAsync("/v1/completions", Json(Completion("private-ft")))).StatusCode);
        Assert.Equal(tenant, (await ReadJson(await owner.GetAsync("/v1/models/private-ft"))).GetProperty("owned_by").GetString());

        Assert.DoesNotContain("private-ft", await other.GetStringAsync("/v1/models"));
        await ReadError(await other.GetAsync("/v1/models/private-ft"), HttpStatusCode.NotFound);
        await ReadError(await other.PostAsync("/v1/completions", Json(Completion("private-ft"))), HttpStatusCode.NotFound);
        await ReadError(await other.PostAsync("/v1/chat/completions", Json(new { model = "private-ft", messages = new[] { new { role = "user", content = "hi" } } })),
            HttpStatusCode.NotFound);
        await ReadError(await other.PostAsync("/v1/sessions", Json(new { model = "private-ft" })), HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("{\"name\":\"x1\"}", "source")]
    [InlineData("{\"name\":\"../x\",\"source\":\"/tmp\"}", "name")]
    [InlineData("{\"name\":\"x2\",\"source\":\"/tmp\",\"dtype\":\"int3\"}", "dtype")]
    [InlineData("{\"name\":\"x3\",\"source\":\"/tmp\",\"device\":\"tpu\"}", "device")]
    [InlineData("{\"name\":\"x4\",\"source\":\"/tmp\",\"quantization\":\"int5\"}", "quantization")]
    [InlineData("{\"name\":\"x5\",\"source\":\"/tmp\",\"max_replicas\":0}", "max_replicas")]
    [InlineData("{\"name\":\"x6\",\"source\":\"/tmp\",\"min_replicas\":3,\"max_replicas\":2}", "max_replicas")]
    [InlineData("{\"name\":\"x7\",\"source\":\"/tmp\",\"memory_mb\":-1}", "memory_mb")]
    [InlineData("{\"name\":\"x8\",\"source\":\"/tmp\",\"silos\":[]}", "silos")]
    [InlineData("{\"name\":\"alpha\",\"source\":\"/tmp\"}", "name")]
    public async Task A_bad_registration_is_a_4xx_naming_the_field(string body, string param)
    {
        using var admin = fixture.Client(GatewayFixture.AdminKey);
        var response = await admin.PostAsync("/admin/models", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Conflict, $"{response.StatusCode}");
        Assert.Equal(param, (await ReadError(response, response.StatusCode)).GetProperty("param").GetString());
    }

    private static async Task<JsonElement> WaitForState(HttpClient client, string model, string state)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var found = Find(await ReadJson(await client.GetAsync("/v1/models")), model);
            if (found.GetProperty("state").GetString() == state) return found;
            Assert.True(DateTime.UtcNow < deadline, $"{model} did not become {state} (it is {found.GetProperty("state").GetString()})");
            await Task.Delay(100);
        }
    }
}
