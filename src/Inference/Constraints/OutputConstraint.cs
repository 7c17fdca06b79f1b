using System.Collections.Concurrent;
using System.Text.Json;

namespace Gpt2Orleans.Inference.Constraints;

public enum OutputConstraintKind
{
    /// <summary>Any JSON object (OpenAI's <c>response_format: {"type": "json_object"}</c>).</summary>
    JsonObject,
    /// <summary>JSON valid against the JSON Schema in <see cref="OutputConstraint.Source"/>.</summary>
    JsonSchema,
    /// <summary>Text matching the regular expression in <see cref="OutputConstraint.Source"/>, whole.</summary>
    Regex,
    /// <summary>Exactly one of the strings in the JSON array <see cref="OutputConstraint.Source"/>.</summary>
    Choice,
    /// <summary>One of several schemas, each written between a literal prefix and suffix: a JSON array of
    /// <c>{"prefix": …, "schema": …, "suffix": …}</c> (how a tool call is framed around its arguments).</summary>
    FramedSchemas,
}

/// <summary>
/// What a request's output must be (structured outputs, vLLM's guided decoding): the engine masks, at every step,
/// the tokens that cannot continue a valid output, so the finished text always is one. <see cref="Parameter"/> names
/// the request field it came from, for errors.
/// </summary>
public sealed record OutputConstraint(OutputConstraintKind Kind, string Source, string Parameter = "response_format")
{
    private static readonly ConcurrentDictionary<OutputConstraint, Grammar> Compiled = new();
    private static readonly Lock CacheLock = new();
    private static long s_compiledNodes;
    /// <summary>Compiled grammars kept for reuse (a client sends the same schema again and again), at most this many
    /// and <see cref="CacheNodes"/> nodes in all (~100 bytes each: distinct large schemas must not fill the memory).</summary>
    public const int CacheSize = 256;
    public const long CacheNodes = 2_000_000;

    /// <summary>The grammar, compiled once per distinct constraint; throws <see cref="GrammarException"/> naming what is wrong.</summary>
    public Grammar Compile()
    {
        if (Compiled.TryGetValue(this, out var known)) return known;
        var grammar = Build();
        lock (CacheLock)
        {
            if (Compiled.TryGetValue(this, out known)) return known;
            if (Compiled.Count >= CacheSize || s_compiledNodes + grammar.NodeCount > CacheNodes)
            {
                Compiled.Clear(); // the simplest eviction; requests hold their grammar, so nothing in flight is lost
                s_compiledNodes = 0;
            }
            s_compiledNodes += grammar.NodeCount;
            Compiled[this] = grammar;
            return grammar;
        }
    }

    private Grammar Build()
    {
        var builder = new GrammarBuilder();
        var json = new JsonGrammar(builder);
        int root = builder.DeclareRule();
        var body = Kind switch
        {
            OutputConstraintKind.JsonObject => builder.Seq(json.Whitespace(), json.AnyObject(null)),
            OutputConstraintKind.JsonSchema => builder.Seq(json.Whitespace(), JsonSchemaCompiler.Compile(builder, ParseJson(Source, "schema"))),
            OutputConstraintKind.Regex => RegexPattern.Parse(Source, "regex").Pattern.Build(builder, builder.Chars),
            OutputConstraintKind.Choice => builder.Alt(Strings(ParseJson(Source, "choice")).Select(builder.Literal).ToList()),
            OutputConstraintKind.FramedSchemas => builder.Alt(ParseJson(Source, "schema").EnumerateArray().Select(framed => builder.Seq(
                builder.Literal(framed.GetProperty("prefix").GetString()!), JsonSchemaCompiler.Compile(builder, framed.GetProperty("schema")),
                builder.Literal(framed.GetProperty("suffix").GetString()!))).ToList()),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind)),
        };
        builder.DefineRule(root, body);
        return builder.Build(root);
    }

    private static JsonElement ParseJson(string text, string what)
    {
        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 128 });
            return document.RootElement.Clone();
        }
        catch (JsonException e) { throw new GrammarException($"the {what} is not valid JSON: {e.Message}", what); }
    }

    private static IEnumerable<string> Strings(JsonElement choices)
    {
        if (choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0 || choices.EnumerateArray().Any(c => c.ValueKind != JsonValueKind.String || c.GetString()!.Length == 0))
            throw new GrammarException("the choices must be a non-empty array of non-empty strings", "choice");
        return choices.EnumerateArray().Select(c => c.GetString()!);
    }
}
