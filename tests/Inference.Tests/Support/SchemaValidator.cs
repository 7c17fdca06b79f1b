using System.Text.Json;
using Json.Schema;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>JSON Schema validation by an independent library (JsonSchema.Net), formats included.</summary>
public static class SchemaValidator
{
    public static void AssertValid(string schema, string json)
    {
        using var document = JsonDocument.Parse(json);
        var compiled = JsonSchema.FromText(schema, new BuildOptions { SchemaRegistry = new SchemaRegistry() });
        var result = compiled.Evaluate(document.RootElement, new EvaluationOptions { RequireFormatValidation = true, OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, $"not valid against {schema}: {json}\n{string.Join("\n", (result.Details ?? []).Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")))}");
    }
}
