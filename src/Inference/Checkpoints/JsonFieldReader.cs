using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>Typed access to the fields of a Hugging Face JSON file (config.json, generation_config.json) with errors that name the field.</summary>
internal sealed class JsonFieldReader(JsonObject root, string source)
{
    public static JsonFieldReader Parse(string json, string source)
    {
        try
        {
            var root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 16 }) as JsonObject
                ?? throw new CheckpointException($"{source}: must be a JSON object");
            return new JsonFieldReader(root, source);
        }
        catch (JsonException e) { throw new CheckpointException($"{source}: invalid JSON: {e.Message}", e); }
    }

    public bool Has(string field) => root.ContainsKey(field);

    /// <summary>A nested object's fields (errors name it as <c>parent.field</c>), or null when absent.</summary>
    public JsonFieldReader? Object(string field)
    {
        if (!root.TryGetPropertyValue(field, out var node) || node is null) return null;
        return node is JsonObject nested ? new JsonFieldReader(nested, $"{source}: {field}") : throw Error(field, "an object");
    }

    private JsonValue? Value(string field, string expected)
    {
        if (!root.TryGetPropertyValue(field, out var node) || node is null) return null;
        return node as JsonValue ?? throw Error(field, expected);
    }

    private CheckpointException Error(string field, string expected) =>
        new($"{source}: {field}: expected {expected}, got {root[field]?.ToJsonString()}");

    public int? Int(string field)
    {
        var v = Value(field, "an integer");
        if (v is null) return null;
        if (v.TryGetValue<int>(out var i)) return i;
        if (v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
        throw Error(field, "an integer");
    }

    public double? Double(string field)
    {
        var v = Value(field, "a number");
        if (v is null) return null;
        return v.TryGetValue<double>(out var d) ? d : throw Error(field, "a number");
    }

    public bool? Bool(string field)
    {
        var v = Value(field, "true or false");
        if (v is null) return null;
        return v.TryGetValue<bool>(out var b) ? b : throw Error(field, "true or false");
    }

    public string? String(string field)
    {
        var v = Value(field, "a string");
        if (v is null) return null;
        return v.TryGetValue<string>(out var s) ? s : throw Error(field, "a string");
    }

    public IReadOnlyList<int> IntOrList(string field)
    {
        if (root[field] is JsonArray array)
            return array.Select(n => n is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw Error(field, "integers")).ToArray();
        return Int(field) is { } single ? [single] : [];
    }

    public IReadOnlyList<string> StringList(string field) => root[field] switch
    {
        null => [],
        JsonArray array => array.Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Error(field, "strings")).ToArray(),
        _ => throw Error(field, "a list of strings"),
    };

    public IReadOnlyDictionary<int, string>? Labels(string field)
    {
        if (root[field] is null) return null;
        if (root[field] is not JsonObject labels) throw Error(field, "an object of index → label");
        var result = new SortedDictionary<int, string>();
        foreach (var (key, value) in labels)
        {
            if (!int.TryParse(key, out var index) || index < 0 || value is not JsonValue v || !v.TryGetValue<string>(out var label))
                throw Error(field, "an object of index → label");
            result[index] = label;
        }
        if (result.Count > 0 && result.Keys.Last() != result.Count - 1)
            throw new CheckpointException($"{source}: {field}: label indices must be 0..{result.Count - 1}");
        return result;
    }

    /// <summary>A list of id lists (bad_words_ids).</summary>
    public IReadOnlyList<IReadOnlyList<int>>? IntLists(string field)
    {
        if (root[field] is null) return null;
        if (root[field] is not JsonArray outer) throw Error(field, "a list of token-id lists");
        return outer.Select(inner => inner is JsonArray ids
            ? (IReadOnlyList<int>)ids.Select(n => n is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw Error(field, "a list of token-id lists")).ToArray()
            : throw Error(field, "a list of token-id lists")).ToArray();
    }

    /// <summary>A string or a list of strings (stop_strings).</summary>
    public IReadOnlyList<string>? StringOrList(string field) => root[field] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        JsonArray => StringList(field),
        _ => throw Error(field, "a string or a list of strings"),
    };

    /// <summary>true, false or a string (early_stopping's "never").</summary>
    public string? BoolOrString(string field)
    {
        var v = Value(field, "true, false or a string");
        if (v is null) return null;
        if (v.TryGetValue<bool>(out var b)) return b ? "true" : "false";
        return v.TryGetValue<string>(out var s) ? s : throw Error(field, "true, false or a string");
    }
}
