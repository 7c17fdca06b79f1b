using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// A JSON Schema as a grammar whose every output is JSON that validates against it. Supported keywords:
/// <c>type</c> (one or a list), <c>enum</c>, <c>const</c>, <c>properties</c>, <c>required</c>,
/// <c>additionalProperties</c>, <c>items</c>, <c>minItems</c>, <c>maxItems</c>, <c>minLength</c>, <c>maxLength</c>,
/// <c>pattern</c>, <c>format</c> (<see cref="Formats"/>), <c>minimum</c>/<c>maximum</c>/<c>exclusiveMinimum</c>/
/// <c>exclusiveMaximum</c> on integers, <c>anyOf</c>, <c>allOf</c> with one schema, local <c>$ref</c> (<c>#</c>,
/// <c>#/$defs/…</c>, <c>#/definitions/…</c>, recursive ones included), and the annotations (<c>title</c>,
/// <c>description</c>, …), which change nothing. Any other keyword is refused with a <see cref="GrammarException"/>
/// naming it. Objects are written with their declared properties in order (optional ones may be left out), as
/// outlines does; an object without <c>properties</c> takes any keys.
/// </summary>
internal sealed class JsonSchemaCompiler
{
    private static readonly HashSet<string> Annotations = ["title", "description", "default", "examples", "$schema", "$id", "$comment",
        "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "strict", "contentMediaType", "contentEncoding"];
    private static readonly HashSet<string> Supported = ["type", "enum", "const", "properties", "required", "additionalProperties", "items",
        "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "anyOf", "allOf", "$ref", "uniqueItems"];
    private static readonly string[] Types = ["string", "integer", "number", "boolean", "null", "object", "array"];

    /// <summary>The string formats written by pattern (ECMAScript syntax, matched whole).</summary>
    public static IReadOnlyDictionary<string, string> Formats { get; } = new Dictionary<string, string>
    {
        ["date"] = Date,
        ["time"] = Time,
        ["date-time"] = Date + "T" + Time,
        ["uuid"] = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        ["email"] = "[A-Za-z0-9_+-]{1,32}(\\.[A-Za-z0-9_+-]{1,32}){0,3}@" + Label + "(\\." + Label + "){0,3}\\.[A-Za-z]{2,12}",
        ["hostname"] = Label + "(\\." + Label + "){0,5}",
        ["ipv4"] = Octet + "(\\." + Octet + "){3}",
    };

    private const string Date = "[1-9][0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))";
    private const string Time = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
    private const string Label = "[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?";
    private const string Octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    /// <summary>The largest minLength/maxLength/minItems/maxItems compiled (each unit is a copy in the automaton).</summary>
    public const int MaxCount = 4096;
    private static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly JsonGrammar _json;
    private readonly GrammarBuilder _builder;
    private readonly JsonElement _root;
    private readonly Dictionary<string, int> _refRules = new();

    private JsonSchemaCompiler(GrammarBuilder builder, JsonElement root)
    {
        _builder = builder;
        _json = new JsonGrammar(builder);
        _root = root;
    }

    /// <summary>A fragment for values of <paramref name="schema"/> (whose <c>$ref</c>s resolve against it), inside <paramref name="builder"/>.</summary>
    public static Fragment Compile(GrammarBuilder builder, JsonElement schema) => new JsonSchemaCompiler(builder, schema).Value(schema, "#");

    private static GrammarException Refuse(string keyword, string message) => new($"the schema's '{keyword}' {message}", keyword);

    private Fragment Value(JsonElement schema, string path)
    {
        if (schema.ValueKind == JsonValueKind.True) return _json.Value();
        if (schema.ValueKind == JsonValueKind.False) throw Refuse("false", $"at {path} allows no value at all");
        if (schema.ValueKind != JsonValueKind.Object) throw new GrammarException($"the schema at {path} must be an object or a boolean", "schema");
        foreach (var p in schema.EnumerateObject())
            if (!Annotations.Contains(p.Name) && !Supported.Contains(p.Name))
                throw Refuse(p.Name, $"(at {path}) is not supported; supported: {string.Join(", ", Supported.Order())}");

        if (schema.TryGetProperty("$ref", out var reference))
        {
            foreach (var p in schema.EnumerateObject())
                if (p.Name != "$ref" && !Annotations.Contains(p.Name)) throw Refuse(p.Name, $"beside '$ref' (at {path}) is not supported");
            return Ref(reference, path);
        }
        if (schema.TryGetProperty("allOf", out var all))
        {
            if (all.ValueKind != JsonValueKind.Array || all.GetArrayLength() != 1 || schema.EnumerateObject().Any(p => p.Name != "allOf" && !Annotations.Contains(p.Name)))
                throw Refuse("allOf", $"(at {path}) is supported only with exactly one schema and nothing beside it");
            return Value(all[0], path + "/allOf/0");
        }
        if (schema.TryGetProperty("anyOf", out var any))
        {
            if (any.ValueKind != JsonValueKind.Array || any.GetArrayLength() == 0) throw Refuse("anyOf", $"(at {path}) must be a non-empty array of schemas");
            if (schema.EnumerateObject().Any(p => p.Name != "anyOf" && !Annotations.Contains(p.Name)))
                throw Refuse("anyOf", $"(at {path}) is supported only without other keywords beside it");
            return _builder.Alt(any.EnumerateArray().Select((s, i) => Value(s, $"{path}/anyOf/{i}")).ToList());
        }
        if (schema.TryGetProperty("const", out var constant)) return Literal(constant);
        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0) throw Refuse("enum", $"(at {path}) must be a non-empty array");
            return _builder.Alt(values.EnumerateArray().Select(Literal).ToList());
        }
        if (Bool(schema, "uniqueItems", path)) throw Refuse("uniqueItems", $"true (at {path}) is not supported");

        var types = TypesOf(schema, path);
        return types.Count == 1 ? Typed(schema, types[0], path) : _builder.Alt(types.Select(t => Typed(schema, t, path)).ToList());
    }

    private List<string> TypesOf(JsonElement schema, string path)
    {
        if (!schema.TryGetProperty("type", out var type))
        {
            // No type: what the other keywords describe, else any value.
            if (schema.TryGetProperty("properties", out _) || schema.TryGetProperty("required", out _) || schema.TryGetProperty("additionalProperties", out _)) return ["object"];
            if (schema.TryGetProperty("items", out _) || schema.TryGetProperty("minItems", out _) || schema.TryGetProperty("maxItems", out _)) return ["array"];
            if (schema.TryGetProperty("pattern", out _) || schema.TryGetProperty("format", out _) || schema.TryGetProperty("minLength", out _) || schema.TryGetProperty("maxLength", out _)) return ["string"];
            if (schema.TryGetProperty("minimum", out _) || schema.TryGetProperty("maximum", out _)) return ["number"];
            return ["any"];
        }
        var names = type.ValueKind switch
        {
            JsonValueKind.String => [type.GetString()!],
            JsonValueKind.Array when type.GetArrayLength() > 0 && type.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String) =>
                type.EnumerateArray().Select(t => t.GetString()!).Distinct().ToList(),
            _ => throw Refuse("type", $"(at {path}) must be a type name or a non-empty list of them"),
        };
        foreach (var name in names)
            if (!Types.Contains(name)) throw Refuse("type", $"'{name}' (at {path}) is not one of {string.Join(", ", Types)}");
        return names;
    }

    private Fragment Typed(JsonElement schema, string type, string path) => type switch
    {
        "any" => _json.Value(),
        "string" => String(schema, path),
        "integer" => Integer(schema, path),
        "number" => Number(schema, path),
        "boolean" => _builder.Alt(_builder.Literal("true"), _builder.Literal("false")),
        "null" => _builder.Literal("null"),
        "object" => Object(schema, path),
        "array" => Array(schema, path),
        _ => throw new InvalidOperationException(type),
    };

    private Fragment Ref(JsonElement reference, string path)
    {
        if (reference.ValueKind != JsonValueKind.String) throw Refuse("$ref", $"(at {path}) must be a string");
        string target = reference.GetString()!;
        if (_refRules.TryGetValue(target, out int known)) return _builder.CallRule(known);
        var resolved = Resolve(target, path);
        int rule = _builder.DeclareRule();
        _refRules[target] = rule;
        _builder.DefineRule(rule, Value(resolved, target));
        return _builder.CallRule(rule);
    }

    private JsonElement Resolve(string target, string path)
    {
        if (target != "#" && !target.StartsWith("#/", StringComparison.Ordinal))
            throw Refuse("$ref", $"'{target}' (at {path}) is not a local reference ('#', '#/$defs/…')");
        var at = _root;
        foreach (var raw in target.Length <= 2 ? [] : target[2..].Split('/'))
        {
            var name = Uri.UnescapeDataString(raw).Replace("~1", "/").Replace("~0", "~");
            if (at.ValueKind == JsonValueKind.Object && at.TryGetProperty(name, out var next)) at = next;
            else if (at.ValueKind == JsonValueKind.Array && int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < at.GetArrayLength()) at = at[i];
            else throw Refuse("$ref", $"'{target}' (at {path}) points to nothing in the schema");
        }
        return at;
    }

    private Fragment Literal(JsonElement value) => _builder.Literal(JsonSerializer.Serialize(value, Compact));

    private Fragment String(JsonElement schema, string path)
    {
        int? min = Count(schema, "minLength", path), max = Count(schema, "maxLength", path);
        bool hasPattern = schema.TryGetProperty("pattern", out var pattern), hasFormat = schema.TryGetProperty("format", out var format);
        if (hasPattern && hasFormat) throw Refuse("format", $"beside 'pattern' (at {path}) is not supported");
        if ((hasPattern || hasFormat) && (min is not null || max is not null))
            throw Refuse(min is not null ? "minLength" : "maxLength", $"beside '{(hasPattern ? "pattern" : "format")}' (at {path}) is not supported");
        if (min > max) throw Refuse("minLength", $"({min}) is larger than maxLength ({max}) at {path}");
        if (hasFormat)
        {
            if (format.ValueKind != JsonValueKind.String || !Formats.TryGetValue(format.GetString()!, out var formatPattern))
                throw Refuse("format", $"'{format}' (at {path}) is not supported; supported: {string.Join(", ", Formats.Keys)}");
            return _json.Quoted(Pattern($"^{formatPattern}$", "format"));
        }
        if (hasPattern)
        {
            if (pattern.ValueKind != JsonValueKind.String) throw Refuse("pattern", $"(at {path}) must be a string");
            return _json.Quoted(Pattern(pattern.GetString()!, "pattern"));
        }
        return _json.Quoted(_builder.Repeat(_json.StringChar, min ?? 0, max));
    }

    /// <summary>A string's content matching <paramref name="pattern"/>; JSON Schema's patterns are not anchored, so an unanchored end takes any further text.</summary>
    private Fragment Pattern(string pattern, string keyword)
    {
        var (parsed, anchoredStart, anchoredEnd) = RegexPattern.Parse(pattern, keyword);
        var body = parsed.Build(_builder, _json.StringChar);
        return _builder.Seq(anchoredStart ? _builder.Empty() : _builder.Star(_json.StringChar()), body,
            anchoredEnd ? _builder.Empty() : _builder.Star(_json.StringChar()));
    }

    private Fragment Integer(JsonElement schema, string path)
    {
        decimal? lo = Bound(schema, "minimum", path), hi = Bound(schema, "maximum", path);
        if (Bound(schema, "exclusiveMinimum", path) is { } exclusiveLo) lo = Math.Max(lo ?? decimal.MinValue, Math.Floor(exclusiveLo) + 1);
        if (Bound(schema, "exclusiveMaximum", path) is { } exclusiveHi) hi = Math.Min(hi ?? decimal.MaxValue, Math.Ceiling(exclusiveHi) - 1);
        if (lo is null && hi is null) return _json.Integer();
        long limit = IntegerRange.Largest;
        long low = lo is { } l ? (long)Math.Max(-limit, Math.Ceiling(l)) : -limit, high = hi is { } h ? (long)Math.Min(limit, Math.Floor(h)) : limit;
        if (lo is { } a && a > limit || hi is { } b && b < -limit) throw Refuse(lo > limit ? "minimum" : "maximum", $"(at {path}) is beyond ±{limit}");
        if (low > high) throw Refuse("minimum", $"(at {path}) leaves no integer below the maximum");
        return IntegerRange.Build(_builder, low, high);
    }

    private Fragment Number(JsonElement schema, string path)
    {
        foreach (var keyword in new[] { "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" })
            if (schema.TryGetProperty(keyword, out _))
                throw Refuse(keyword, $"on a number (at {path}) is not supported: it is on an integer");
        return _json.Number();
    }

    private Fragment Object(JsonElement schema, string path)
    {
        var properties = new List<(string Name, JsonElement Schema)>();
        if (schema.TryGetProperty("properties", out var declared))
        {
            if (declared.ValueKind != JsonValueKind.Object) throw Refuse("properties", $"(at {path}) must be an object");
            properties.AddRange(declared.EnumerateObject().Select(p => (p.Name, p.Value)));
        }
        var required = new HashSet<string>();
        if (schema.TryGetProperty("required", out var names))
        {
            if (names.ValueKind != JsonValueKind.Array || names.EnumerateArray().Any(n => n.ValueKind != JsonValueKind.String))
                throw Refuse("required", $"(at {path}) must be an array of property names");
            required.UnionWith(names.EnumerateArray().Select(n => n.GetString()!));
        }
        bool hasAdditional = schema.TryGetProperty("additionalProperties", out var additional);
        bool closed = hasAdditional && additional.ValueKind == JsonValueKind.False;
        foreach (var name in required.Where(r => properties.All(p => p.Name != r)).Order())
        {
            if (closed) throw Refuse("required", $"names '{name}' (at {path}), which 'additionalProperties': false forbids");
            properties.Add((name, hasAdditional ? additional : default));
        }
        if (properties.Count == 0)
        {
            if (closed) return _builder.Seq(_builder.Literal("{"), _json.Token("}"));
            if (!hasAdditional || additional.ValueKind == JsonValueKind.True) return _json.AnyObject(null);
            int valueRule = Rule(additional, path + "/additionalProperties");
            return _json.AnyObject(() => _builder.CallRule(valueRule));
        }

        // Declared properties in order, each optional one skippable: junction[i, wrote] is "before property i, with
        // (1) or without (0) a property written", so a comma comes exactly between two written properties.
        var open = _builder.Seq(_builder.Literal("{"));
        var junctions = new Fragment[properties.Count + 1, 2];
        for (int i = 0; i <= properties.Count; i++)
            for (int w = 0; w < 2; w++) junctions[i, w] = _builder.Empty();
        _builder.Epsilon(open.Out, junctions[0, 0].In);
        for (int i = 0; i < properties.Count; i++)
        {
            var (name, propertySchema) = properties[i];
            int valueRule = propertySchema.ValueKind == JsonValueKind.Undefined ? _json.ValueRule() : Rule(propertySchema, $"{path}/properties/{name}");
            Fragment Member() => _builder.Seq(_json.Whitespace(), Literal(JsonSerializer.SerializeToElement(name)), _json.Token(":"),
                _json.Whitespace(), _builder.CallRule(valueRule));
            var first = Member();
            _builder.Epsilon(junctions[i, 0].Out, first.In);
            _builder.Epsilon(first.Out, junctions[i + 1, 1].In);
            var next = _builder.Seq(_json.Token(","), Member());
            _builder.Epsilon(junctions[i, 1].Out, next.In);
            _builder.Epsilon(next.Out, junctions[i + 1, 1].In);
            if (!required.Contains(name))
                for (int w = 0; w < 2; w++) _builder.Epsilon(junctions[i, w].Out, junctions[i + 1, w].In);
        }
        var close = _json.Token("}");
        for (int w = 0; w < 2; w++) _builder.Epsilon(junctions[properties.Count, w].Out, close.In);
        return new Fragment(open.In, close.Out);
    }

    private Fragment Array(JsonElement schema, string path)
    {
        int? min = Count(schema, "minItems", path), max = Count(schema, "maxItems", path);
        if (min > max) throw Refuse("minItems", $"({min}) is larger than maxItems ({max}) at {path}");
        int itemRule = schema.TryGetProperty("items", out var items) ? Rule(items, path + "/items") : _json.ValueRule();
        return _json.AnyArray(() => _builder.CallRule(itemRule), min ?? 0, max);
    }

    /// <summary>A sub-schema as a rule of its own, so several places (or copies in a repetition) call one body.</summary>
    private int Rule(JsonElement schema, string path)
    {
        int rule = _builder.DeclareRule();
        _builder.DefineRule(rule, Value(schema, path));
        return rule;
    }

    private static int? Count(JsonElement schema, string keyword, string path)
    {
        if (!schema.TryGetProperty(keyword, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int n) || n < 0) throw Refuse(keyword, $"(at {path}) must be a non-negative integer");
        if (n > MaxCount) throw Refuse(keyword, $"({n}, at {path}) is above the largest supported, {MaxCount}");
        return n;
    }

    private static decimal? Bound(JsonElement schema, string keyword, string path)
    {
        if (!schema.TryGetProperty(keyword, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDecimal(out var d)) throw Refuse(keyword, $"(at {path}) must be a number");
        return d;
    }

    private static bool Bool(JsonElement schema, string keyword, string path)
    {
        if (!schema.TryGetProperty(keyword, out var v)) return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Refuse(keyword, $"(at {path}) must be a boolean"),
        };
    }
}
