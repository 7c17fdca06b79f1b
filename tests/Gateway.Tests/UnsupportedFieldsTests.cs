using System.Net;
using System.Text;
using Gpt2Orleans.Gateway.Tests.Support;
using static Gpt2Orleans.Gateway.Tests.Support.Http;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>An OpenAI or vLLM field the server cannot honour is a 400 naming it, never silently ignored.</summary>
[Collection(GatewayCollection.Name)]
public sealed class UnsupportedFieldsTests(GatewayFixture fixture)
{
    private const string Messages = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";
    private const string Tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]";

    [Theory]
    [InlineData("{\"model\":\"alpha\"," + Messages + ",\"response_format\":{\"type\":\"json_schema_v2\"}}", "response_format")]
    [InlineData("{\"model\":\"alpha\"," + Messages + "," + Tools + "}", "tool_choice")]
    [InlineData("{\"model\":\"alpha\"," + Messages + "," + Tools + ",\"tool_choice\":\"auto\"}", "tool_choice")]
    [InlineData("{\"model\":\"alpha\"," + Messages + ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}", "tool_choice")]
    [InlineData("{\"model\":\"alpha\"," + Messages + ",\"audio\":{\"voice\":\"alloy\"}}", "audio")]
    [InlineData("{\"model\":\"alpha\"," + Messages + ",\"modalities\":[\"text\",\"audio\"]}", "modalities")]
    [InlineData("{\"model\":\"alpha\"," + Messages + ",\"prediction\":{\"type\":\"content\",\"content\":\"x\"}}", "prediction")]
    [InlineData("{\"model\":\"alpha\"," + Messages + ",\"guided_grammar\":\"root ::= \\\"a\\\"\"}", "guided_grammar")]
    public async Task A_chat_field_it_cannot_honour_is_a_400_naming_it(string body, string field)
    {
        using var client = fixture.Client();
        var error = await ReadError(await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Equal("unsupported_parameter", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Completions_refuse_them_too_and_what_changes_nothing_is_accepted()
    {
        using var client = fixture.Client();
        Assert.Equal("tools", (await ReadError(await client.PostAsync("/v1/completions",
            Json(new { model = GatewayFixture.Model, prompt = "Hi", tools = new[] { new { type = "function", function = new { name = "f" } } } })), HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        string body = "{\"model\":\"alpha\"," + Messages + ",\"max_tokens\":2,\"response_format\":{\"type\":\"text\"}," + Tools + ",\"tool_choice\":\"none\"}";
        var plain = await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
    }
}
