using System.Text.Json.Nodes;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>Random JSON Schemas within the supported keywords, nested up to a depth, with bounded strings and arrays (so a model's output can finish).</summary>
public static class RandomSchemas
{
    public static string Next(Random random, int depth = 3) => Schema(random, depth).ToJsonString();

    private static readonly string[] Words = ["alpha", "beta", "gamma", "δέλτα", "e\"q", "new\nline", "x"];

    private static JsonObject Schema(Random random, int depth)
    {
        int kinds = depth > 0 ? 14 : 10;
        switch (random.Next(kinds))
        {
            case 0: return new() { ["type"] = "string", ["maxLength"] = random.Next(0, 6) };
            case 1: return new() { ["type"] = "string", ["minLength"] = 1, ["maxLength"] = random.Next(1, 4) };
            case 2: return new() { ["enum"] = new JsonArray(Words.OrderBy(_ => random.Next()).Take(random.Next(1, 4)).Select(w => (JsonNode)w).ToArray()) };
            case 3:
                int lo = random.Next(-150, 100);
                return new() { ["type"] = "integer", ["minimum"] = lo, ["maximum"] = lo + random.Next(0, 2000) };
            case 4: return new() { ["type"] = random.Next(2) == 0 ? "integer" : "number" };
            case 5: return new() { ["type"] = random.Next(2) == 0 ? "boolean" : "null" };
            case 6: return new() { ["const"] = random.Next(2) == 0 ? JsonNode.Parse("{\"k\":[1,\"two\",null]}") : "fixed" };
            case 7: return new() { ["type"] = "string", ["pattern"] = new[] { "^[a-z]{1,5}$", "^(yes|no|maybe)$", "^\\d{3}-[A-Z]{2}$", "^[^\"\\\\]{0,3}$", "^é+ü?$" }[random.Next(5)] };
            case 8: return new() { ["type"] = "string", ["format"] = new[] { "date", "time", "date-time", "uuid", "email", "ipv4", "hostname" }[random.Next(7)] };
            case 9: return new() { ["type"] = new JsonArray("integer", "null") };
            case 10:
            {
                var properties = new JsonObject();
                var required = new JsonArray();
                int count = random.Next(1, 4);
                for (int i = 0; i < count; i++)
                {
                    string name = $"p{i}{(random.Next(3) == 0 ? " \"q\"" : "")}";
                    properties[name] = Schema(random, depth - 1);
                    if (random.Next(2) == 0) required.Add(name);
                }
                return new() { ["type"] = "object", ["properties"] = properties, ["required"] = required, ["additionalProperties"] = false };
            }
            case 11:
            {
                int min = random.Next(0, 3);
                return new() { ["type"] = "array", ["items"] = Schema(random, depth - 1), ["minItems"] = min, ["maxItems"] = min + random.Next(0, 3) };
            }
            case 12: return new() { ["anyOf"] = new JsonArray(Schema(random, depth - 1), Schema(random, depth - 1)) };
            default: return new() { ["type"] = "object", ["additionalProperties"] = Schema(random, depth - 1) };
        }
    }
}
