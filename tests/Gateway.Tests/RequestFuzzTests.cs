using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Gpt2Orleans.Gateway.Tests.Support;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>
/// The request reader under random input (seeded, bounded in count and time): random bytes, random JSON documents,
/// deep nesting and mutated valid requests. No answer is a 500, and the server keeps answering.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class RequestFuzzTests(GatewayFixture fixture)
{
    private static readonly string[] Paths = ["/v1/completions", "/v1/chat/completions", "/v1/sessions", "/v1/classifications"];

    private static readonly Func<JsonNode>[] Valid =
    [
        () => new JsonObject { ["model"] = GatewayFixture.Model, ["prompt"] = "Once upon a time", ["max_tokens"] = 4 },
        () => new JsonObject { ["model"] = GatewayFixture.Model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }), ["max_tokens"] = 4, ["stream"] = true },
        () => new JsonObject { ["model"] = GatewayFixture.Model, ["prompt"] = new JsonArray(1, 2, 3), ["max_tokens"] = 3, ["logprobs"] = 2, ["echo"] = true },
        () => new JsonObject { ["model"] = GatewayFixture.Sentiment, ["input"] = "great" },
    ];

    private static readonly string[] FieldNames =
        ["model", "prompt", "messages", "max_tokens", "temperature", "top_p", "n", "stream", "stop", "seed", "logprobs", "echo", "best_of",
         "logit_bias", "presence_penalty", "repetition_penalty", "top_k", "min_p", "stream_options", "role", "content", "input", "x"];

    [Fact]
    public async Task Random_and_mutated_requests_never_get_a_500_and_the_server_keeps_answering()
    {
        var random = new Random(20261201);
        using var client = fixture.Client();
        client.Timeout = TimeSpan.FromSeconds(30);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        var failures = new List<string>();
        for (int i = 0; i < 400 && DateTime.UtcNow < deadline; i++)
        {
            byte[] body = (i % 4) switch
            {
                0 => RandomBytes(random),
                1 => Text(RandomJson(random, depth: random.Next(1, 6))),
                2 => Encoding.UTF8.GetBytes(Deep(random.Next(10, 200))),
                _ => Text(Mutate(random, Valid[random.Next(Valid.Length)]())),
            };
            string path = Paths[random.Next(Paths.Length)];
            using var content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } };
            using var response = await client.PostAsync(path, content);
            string text = await response.Content.ReadAsStringAsync();
            if ((int)response.StatusCode >= 500) failures.Add($"{(int)response.StatusCode} {path} {Encoding.UTF8.GetString(body)[..Math.Min(300, body.Length)]} -> {text[..Math.Min(300, text.Length)]}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 200)];
        random.NextBytes(bytes);
        if (bytes.Length > 0 && random.Next(2) == 0) bytes[0] = (byte)'{';
        return bytes;
    }

    /// <summary>Written out as the JSON escape of a lone surrogate (a serializer would not write one itself).</summary>
    private const string LoneSurrogate = "@lone-surrogate@";

    private static byte[] Text(JsonNode? node) => Encoding.UTF8.GetBytes((node?.ToJsonString() ?? "null").Replace(LoneSurrogate, "\\ud800"));

    private static string Deep(int depth) => new string('[', depth) + new string(']', depth);

    private static JsonNode? RandomJson(Random random, int depth) => random.Next(depth <= 0 ? 5 : 8) switch
    {
        0 => null,
        1 => JsonValue.Create(random.Next(2) == 0),
        2 => JsonValue.Create(random.Next(-5, 5000)),
        3 => JsonValue.Create(random.NextDouble() * Math.Pow(10, random.Next(-40, 40)) * (random.Next(2) == 0 ? -1 : 1)),
        4 => JsonValue.Create(RandomString(random)),
        5 or 6 => RandomObject(random, depth - 1),
        _ => new JsonArray(Enumerable.Range(0, random.Next(0, 4)).Select(_ => RandomJson(random, depth - 1)).ToArray()),
    };

    private static JsonObject RandomObject(Random random, int depth)
    {
        var o = new JsonObject();
        for (int k = random.Next(0, 5); k > 0; k--) o[FieldNames[random.Next(FieldNames.Length)]] = RandomJson(random, depth);
        return o;
    }

    private static string RandomString(Random random)
    {
        string[] pieces = ["", "a", "hello world", LoneSurrogate, "é", "\0", "\n", "<|endoftext|>", new string('x', 300), "😀", "alpha"];
        return pieces[random.Next(pieces.Length)];
    }

    /// <summary>A valid request with one to three fields replaced by random JSON, removed, or added.</summary>
    private static JsonNode Mutate(Random random, JsonNode valid)
    {
        var o = valid.AsObject();
        for (int k = random.Next(1, 4); k > 0; k--)
        {
            string name = FieldNames[random.Next(FieldNames.Length)];
            if (random.Next(3) == 0) o.Remove(name);
            else o[name] = RandomJson(random, depth: 2);
        }
        return o;
    }
}
