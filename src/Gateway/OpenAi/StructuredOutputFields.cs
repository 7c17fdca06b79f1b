using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// Structured outputs, as a request asks for them: OpenAI's <c>response_format</c> (<c>text</c>, <c>json_object</c>,
/// <c>json_schema</c>) or one of vLLM's <c>guided_json</c>, <c>guided_regex</c>, <c>guided_choice</c>. The schema is
/// compiled on the model's silo, which refuses a keyword it does not support with a 400 naming it, before any stream.
/// </summary>
public static class StructuredOutputFields
{
    public static ResponseConstraint? Parse(RequestFields fields)
    {
        var given = new[] { "response_format", "guided_json", "guided_regex", "guided_choice" }.Where(n => fields.Get(n) is not null).ToList();
        var asked = given.Select(name => (Name: name, Constraint: Read(fields, name))).Where(c => c.Constraint is not null).ToList();
        if (asked.Count > 1)
            throw ApiException.BadRequest($"'{asked[0].Name}' and '{asked[1].Name}' both constrain the output: send one", asked[1].Name);
        return asked.Count == 1 ? asked[0].Constraint : null;
    }

    private static ResponseConstraint? Read(RequestFields fields, string name)
    {
        var value = fields.Get(name)!.Value;
        switch (name)
        {
            case "response_format":
                if (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                    throw RequestFields.Wrong(name, "an object with a 'type' of text, json_object or json_schema");
                switch (type.GetString())
                {
                    case "text": return null;
                    case "json_object": return new ResponseConstraint("json_object", "", name);
                    case "json_schema":
                        if (!value.TryGetProperty("json_schema", out var spec) || spec.ValueKind != JsonValueKind.Object)
                            throw ApiException.BadRequest("'response_format.json_schema' must be an object with a name and a schema", name);
                        if (!spec.TryGetProperty("name", out var schemaName) || schemaName.ValueKind != JsonValueKind.String || schemaName.GetString()!.Length == 0)
                            throw ApiException.BadRequest("'response_format.json_schema.name' is required", name);
                        if (spec.TryGetProperty("strict", out var strict) && strict.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
                            throw ApiException.BadRequest("'response_format.json_schema.strict' must be a boolean", name);
                        if (!spec.TryGetProperty("schema", out var schema)) return new ResponseConstraint("json_schema", "{}", name);
                        if (schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True))
                            throw ApiException.BadRequest("'response_format.json_schema.schema' must be a JSON Schema object", name);
                        return new ResponseConstraint("json_schema", schema.GetRawText(), name);
                    default:
                        throw ApiException.BadRequest($"'response_format.type' is '{type.GetString()}': use text, json_object or json_schema", name, "unsupported_parameter");
                }
            case "guided_json":
                // vLLM takes the schema itself, or its JSON text.
                if (value.ValueKind == JsonValueKind.String)
                {
                    try { value = JsonDocument.Parse(value.GetString()!).RootElement.Clone(); }
                    catch (JsonException) { throw RequestFields.Wrong(name, "a JSON Schema (an object, or its JSON text)"); }
                }
                if (value.ValueKind != JsonValueKind.Object) throw RequestFields.Wrong(name, "a JSON Schema object");
                return new ResponseConstraint("json_schema", value.GetRawText(), name);
            case "guided_regex":
                if (value.ValueKind != JsonValueKind.String || value.GetString()!.Length == 0) throw RequestFields.Wrong(name, "a non-empty regular expression");
                return new ResponseConstraint("regex", value.GetString()!, name);
            default: // guided_choice
                if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() == 0
                    || value.EnumerateArray().Any(c => c.ValueKind != JsonValueKind.String || c.GetString()!.Length == 0))
                    throw RequestFields.Wrong(name, "a non-empty array of non-empty strings");
                return new ResponseConstraint("choice", value.GetRawText(), name);
        }
    }
}
