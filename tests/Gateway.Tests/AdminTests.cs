using System.Net;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>The admin API over real HTTP: only the admin key may use it; tenants, keys, quotas (429, then recovery) and usage.</summary>
[Collection(GatewayCollection.Name)]
public sealed class AdminTests(GatewayFixture fixture)
{
    [Fact]
    public async Task Only_the_admin_key_may_administer()
    {
        using var anonymous = fixture.Client(key: null);
        await ReadError(await anonymous.GetAsync("/admin/tenants/dev"), HttpStatusCode.Unauthorized);
        using var tenantKey = fixture.Client();
        Assert.Equal("forbidden", (await ReadError(await tenantKey.GetAsync("/admin/tenants/dev"), HttpStatusCode.Forbidden)).GetProperty("code").GetString());
        using var admin = fixture.Client(GatewayFixture.AdminKey);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/admin/tenants/dev")).StatusCode);
        await ReadError(await admin.GetAsync("/admin/tenants/nobody"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_tenant_gets_keys_that_work_until_revoked_and_its_usage_is_metered()
    {
        using var admin = fixture.Client(GatewayFixture.AdminKey);
        const string tenant = "acme-keys";
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/admin/tenants", Json(new { id = tenant }))).StatusCode);
        await ReadError(await admin.PostAsync("/admin/tenants", Json(new { id = tenant })), HttpStatusCode.Conflict);
        var issued = await ReadJson(await admin.PostAsync($"/admin/tenants/{tenant}/keys", null));
        string key = issued.GetProperty("key").GetString()!, keyId = issued.GetProperty("id").GetString()!;

        using var client = fixture.Client(key);
        var completion = await ReadJson(await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hello", max_tokens = 3 })));
        Assert.Equal(3, completion.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // The tenant is metered just after the answer (the gateway does not keep the client waiting for it).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        System.Text.Json.JsonElement data;
        while ((data = (await ReadJson(await admin.GetAsync($"/admin/tenants/{tenant}/usage"))).GetProperty("data")).GetArrayLength() == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        var usage = data[0];
        Assert.Equal(GatewayFixture.Model, usage.GetProperty("model").GetString());
        Assert.Equal(3, usage.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(1, usage.GetProperty("prompt_tokens").GetInt64());

        var described = await ReadJson(await admin.GetAsync($"/admin/tenants/{tenant}"));
        Assert.Equal(keyId, described.GetProperty("keys")[0].GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.OK, (await admin.DeleteAsync($"/admin/tenants/{tenant}/keys/{keyId}")).StatusCode);
        await ReadError(await client.GetAsync("/v1/models"), HttpStatusCode.Unauthorized);
        await ReadError(await admin.DeleteAsync($"/admin/tenants/{tenant}/keys/{keyId}"), HttpStatusCode.NotFound);
        Assert.Equal("max_sessions", (await ReadError(await admin.PutAsync($"/admin/tenants/{tenant}/quota", Json(new { max_sessions = -1 })), HttpStatusCode.BadRequest))
            .GetProperty("param").GetString());
    }

    [Fact]
    public async Task A_full_stream_quota_is_a_429_with_retry_after_then_recovers()
    {
        using var client = await fixture.NewTenantClient(new { max_concurrent_streams = 1 });
        var longRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = Json(new { model = GatewayFixture.Model, prompt = "Once", max_tokens = 40, stream = true, ignore_eos = true }),
        };
        using (var running = await client.SendAsync(longRequest, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, running.StatusCode); // the first stream holds the only slot while it runs
            var refused = await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hi", max_tokens = 2 }));
            Assert.Equal("rate_limit_exceeded", (await ReadError(refused, HttpStatusCode.TooManyRequests)).GetProperty("code").GetString());
            Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
            await running.Content.ReadAsStringAsync(); // let it finish
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        HttpResponseMessage again;
        while ((again = await client.PostAsync("/v1/completions", Json(new { model = GatewayFixture.Model, prompt = "Hi", max_tokens = 2 }))).StatusCode == HttpStatusCode.TooManyRequests
               && DateTime.UtcNow < deadline)
            await Task.Delay(50); // the slot is given back when the first request's handler ends, just after its last byte
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task A_tenant_sees_only_the_models_it_may_use_and_no_server_paths()
    {
        using var admin = fixture.Client(GatewayFixture.AdminKey);
        string tenant = "only-alpha-" + Guid.NewGuid().ToString("N")[..8];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/admin/tenants", Json(new { id = tenant, allowed_models = new[] { GatewayFixture.Model } }))).StatusCode);
        using var client = fixture.Client((await ReadJson(await admin.PostAsync($"/admin/tenants/{tenant}/keys", null))).GetProperty("key").GetString());
        var listed = (await ReadJson(await client.GetAsync("/v1/models"))).GetProperty("data").EnumerateArray().ToList();
        Assert.Equal([GatewayFixture.Model], listed.Select(m => m.GetProperty("id").GetString()));
        Assert.False(listed[0].TryGetProperty("source", out _), "the model's source (a server path) is not shown");
        Assert.Equal("model_not_found", (await ReadError(await client.GetAsync($"/v1/models/{GatewayFixture.Sentiment}"), HttpStatusCode.NotFound)).GetProperty("code").GetString());
        using var everyone = fixture.Client();
        Assert.True((await ReadJson(await everyone.GetAsync("/v1/models"))).GetProperty("data").GetArrayLength() >= 3);
    }
}
