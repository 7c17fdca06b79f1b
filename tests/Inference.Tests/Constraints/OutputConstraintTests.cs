using System.Text;
using System.Text.Json;
using Gpt2Orleans.Inference.Constraints;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Constraints;

/// <summary>The grammars constraints compile to, on their own: what they accept, what they refuse, and their token masks.</summary>
public sealed class OutputConstraintTests
{
    private static Grammar Schema(string schema) => new OutputConstraint(OutputConstraintKind.JsonSchema, schema).Compile();
    private static Grammar Regex(string pattern) => new OutputConstraint(OutputConstraintKind.Regex, pattern).Compile();

    [Theory]
    [InlineData("[a-c]+\\d{2}", "abc12", true)]
    [InlineData("[a-c]+\\d{2}", "abcd12", false)]
    [InlineData("[a-c]+\\d{2}", "ab1", false)]
    [InlineData("(cat|dog)s?", "dogs", true)]
    [InlineData("(?:cat|dog)s?", "cats!", false)]
    [InlineData("[é-ë]x", "êx", true)]
    [InlineData("[é-ë]x", "ex", false)]
    [InlineData(".{2}", "😀a", true)]
    [InlineData(".{2}", "a\n", false)]
    [InlineData("[^a-z]*", "ABC 12 ü", true)]
    [InlineData("[^a-z]*", "ABcD", false)]
    [InlineData("\\w+@\\w+\\.com", "me@site.com", true)]
    [InlineData("a{2,3}", "aaaa", false)]
    [InlineData("a{2,}", "aaaaaa", true)]
    [InlineData("\\x41\\u00e9\\.", "Aé.", true)]
    [InlineData("x{,2}", "x{,2}", true)] // not a count: literal, as in ECMAScript
    public void A_regex_matches_whole_texts(string pattern, string text, bool matches) =>
        Assert.Equal(matches, Regex(pattern).Matches(text));

    [Theory]
    [InlineData("(?=a)a", "lookaround")]
    [InlineData("(a)\\1", "backreferences")]
    [InlineData("\\bword", "word boundaries")]
    [InlineData("a{1001}", "repetition count")]
    [InlineData("(ab", "unclosed")]
    [InlineData("ab)", "unmatched")]
    [InlineData("[z-a]", "out of order")]
    [InlineData("*a", "nothing to repeat")]
    [InlineData("a^b", "anchors")]
    public void An_unsupported_regex_is_refused_naming_the_construct(string pattern, string named)
    {
        var error = Assert.Throws<GrammarException>(() => Regex(pattern));
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void Utf8_byte_sequences_of_a_range_cover_exactly_its_scalars()
    {
        var random = new Random(5);
        for (int trial = 0; trial < 200; trial++)
        {
            int lo = random.Next(0, 0x110000), hi = Math.Min(0x10FFFF, lo + random.Next(0, trial % 2 == 0 ? 300 : 200_000));
            var set = CharSet.Range(lo, hi);
            var builder = new GrammarBuilder();
            int rule = builder.DeclareRule();
            builder.DefineRule(rule, builder.Chars(set));
            var grammar = builder.Build(rule);
            for (int probe = 0; probe < 40; probe++)
            {
                int c = probe < 4 ? new[] { lo, hi, lo - 1, hi + 1 }[probe] : random.Next(Math.Max(0, lo - 100), Math.Min(0x10FFFF, hi + 100) + 1);
                if (c is < 0 or > 0x10FFFF || c is >= 0xD800 and <= 0xDFFF) continue;
                Assert.Equal(c >= lo && c <= hi, grammar.Matches(char.ConvertFromUtf32(c)));
            }
        }
    }

    [Theory]
    [InlineData("{\"oneOf\":[{\"type\":\"string\"}]}", "oneOf")]
    [InlineData("{\"type\":\"object\",\"patternProperties\":{\"^x\":{}}}", "patternProperties")]
    [InlineData("{\"type\":\"object\",\"minProperties\":1}", "minProperties")]
    [InlineData("{\"not\":{\"type\":\"string\"}}", "not")]
    [InlineData("{\"type\":\"number\",\"minimum\":0.5}", "minimum")]
    [InlineData("{\"type\":\"array\",\"uniqueItems\":true}", "uniqueItems")]
    [InlineData("{\"type\":\"string\",\"format\":\"uri\"}", "format")]
    [InlineData("{\"type\":\"string\",\"pattern\":\"(?!x)\"}", "pattern")]
    [InlineData("{\"$ref\":\"#/$defs/missing\"}", "$ref")]
    [InlineData("{\"$ref\":\"https://example.com/s.json\"}", "$ref")]
    [InlineData("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"}]}},\"$ref\":\"#/$defs/a\"}", "$ref")]
    [InlineData("{\"type\":\"tuple\"}", "type")]
    [InlineData("{\"type\":\"string\",\"minLength\":5,\"maxLength\":2}", "minLength")]
    [InlineData("{\"type\":\"string\",\"maxLength\":100000}", "maxLength")]
    [InlineData("{\"type\":\"integer\",\"minimum\":10,\"maximum\":2}", "minimum")]
    [InlineData("{\"type\":\"object\",\"required\":[\"a\"],\"additionalProperties\":false}", "required")]
    [InlineData("false", "false")]
    [InlineData("{\"type\":", "schema")]
    public void An_unsupported_or_contradictory_schema_is_refused_naming_the_keyword(string schema, string keyword)
    {
        var error = Assert.Throws<GrammarException>(() => Schema(schema));
        Assert.Equal(keyword, error.Keyword);
        Assert.Contains(keyword, error.Message);
    }

    [Theory]
    [InlineData("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}},\"required\":[\"b\"]}",
        new[] { "{\"b\":\"x\"}", "{\"a\":-12,\"b\":\"\"}", " { \"a\" : 0 , \"b\" : \"q\\\"\" }" }, new[] { "{\"a\":1}", "{\"b\":\"x\",\"a\":1}", "{\"a\":01,\"b\":\"\"}", "{\"b\":\"x\",}" })]
    [InlineData("{\"type\":\"array\",\"items\":{\"enum\":[1,\"two\",null]},\"minItems\":1,\"maxItems\":2}",
        new[] { "[1]", "[\"two\", null]" }, new[] { "[]", "[1,1,1]", "[2]" })]
    [InlineData("{\"type\":\"integer\",\"minimum\":-5,\"exclusiveMaximum\":120}",
        new[] { "-5", "0", "7", "119" }, new[] { "-6", "120", "-0", "007" })]
    [InlineData("{\"type\":\"string\",\"pattern\":\"a\\\"b\"}", new[] { "\"xa\\\"by\"" }, new[] { "\"ab\"" })]
    [InlineData("{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":[\"v\"]}},\"$ref\":\"#/$defs/node\"}",
        new[] { "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3}]},{\"v\":4}]}" }, new[] { "{\"v\":1,\"kids\":[{}]}" })]
    [InlineData("{\"type\":\"string\",\"format\":\"date\"}", new[] { "\"2024-02-28\"", "\"1999-12-31\"" }, new[] { "\"2024-02-30\"", "\"2024-13-01\"" })]
    [InlineData("{}", new[] { "{\"a\":[1,2.5e3,{\"b\":null}],\"c\":\"\\u0001\"}", "\"s\"", "-0.5" }, new[] { "{a:1}", "[1,]", "\"\\x\"" })]
    public void A_schema_accepts_its_values_and_nothing_else(string schema, string[] valid, string[] invalid)
    {
        var grammar = Schema(schema);
        foreach (var text in valid) Assert.True(grammar.Matches(text), $"refused {text}");
        foreach (var text in invalid) Assert.False(grammar.Matches(text), $"accepted {text}");
    }

    /// <summary>The property: any output the grammar allows parses as JSON and validates against the schema (checked by another library).</summary>
    [Fact]
    public void Every_output_of_a_random_schema_parses_and_validates()
    {
        for (int seed = 0; seed < 150; seed++)
        {
            var random = new Random(seed);
            string schema = RandomSchemas.Next(random);
            var grammar = Schema(schema);
            for (int sample = 0; sample < 4; sample++)
            {
                string output = GrammarWalker.Walk(grammar, random, budget: random.Next(0, 60));
                Assert.True(grammar.Matches(output));
                SchemaValidator.AssertValid(schema, output);
            }
        }
    }

    [Fact]
    public void Json_object_allows_any_object_only()
    {
        var grammar = new OutputConstraint(OutputConstraintKind.JsonObject, "").Compile();
        Assert.True(grammar.Matches("{\"a\": {\"b\": [true, false, null, \"ü\"]}}"));
        Assert.False(grammar.Matches("[1]"));
        Assert.False(grammar.Matches("{\"a\": 1} "));
        var random = new Random(3);
        for (int i = 0; i < 30; i++)
            Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(GrammarWalker.Walk(grammar, random, 40)).RootElement.ValueKind);
    }

    [Fact]
    public void Choice_allows_exactly_its_strings()
    {
        var grammar = new OutputConstraint(OutputConstraintKind.Choice, "[\"red\",\"green\",\"re\"]").Compile();
        Assert.True(grammar.Matches("re"));
        Assert.True(grammar.Matches("green"));
        Assert.False(grammar.Matches("gree"));
        Assert.Throws<GrammarException>(() => new OutputConstraint(OutputConstraintKind.Choice, "[]").Compile());
    }

    /// <summary>The mask from the trie walk equals, token by token, advancing the automaton over each token's bytes.</summary>
    [Fact]
    public void Token_masks_equal_advancing_every_token_on_its_own()
    {
        var tokenizer = Gpt2Tokenizer.Default;
        string schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":4},\"n\":{\"type\":\"integer\",\"minimum\":3,\"maximum\":250},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"ä\",\"b\"]}}},\"required\":[\"name\",\"n\"]}";
        var grammar = Schema(schema);
        var automaton = GrammarAutomaton.For(grammar, tokenizer);
        var random = new Random(11);
        string output = GrammarWalker.Walk(grammar, random, 40);
        var bytes = Encoding.UTF8.GetBytes(output);
        foreach (int cut in new[] { 0, 1, 3, bytes.Length / 2, bytes.Length - 1, bytes.Length })
        {
            var state = automaton.Advance(automaton.Initial, bytes.AsSpan(0, cut));
            var mask = automaton.AllowedTokens(state);
            for (int id = 0; id < tokenizer.VocabSize; id++)
            {
                bool expected = !tokenizer.IsSpecial(id) && !automaton.Advance(state, tokenizer.TokenBytes(id)).IsDead;
                Assert.True(expected == ((mask[id >> 6] >> (id & 63) & 1) == 1), $"token {id} ({tokenizer.IdToToken(id)}) after {cut} bytes of {output}");
            }
        }
    }

    /// <summary>
    /// Past its memory budget an automaton stops caching and retires: its masks stay exactly those of one without a
    /// budget, and the next request with the grammar gets a fresh automaton.
    /// </summary>
    [Fact]
    public void An_automaton_past_its_budget_keeps_its_masks_exact_and_is_replaced()
    {
        var tokenizer = Gpt2Tokenizer.Default;
        string schema = "{\"type\":\"array\",\"minItems\":80,\"items\":{\"type\":\"string\",\"maxLength\":5}}";
        var bounded = GrammarAutomaton.For(Schema(schema), tokenizer, budget: 200_000);
        var reference = GrammarAutomaton.For(Schema(schema + " "), tokenizer); // the same grammar compiled apart, default budget
        var random = new Random(4);
        var (at, expected) = (bounded.Initial, reference.Initial);
        for (int step = 0; step < 200 && expected.CanContinue; step++)
        {
            var mask = bounded.AllowedTokens(at);
            Assert.Equal(reference.AllowedTokens(expected), mask);
            var allowed = Enumerable.Range(0, tokenizer.VocabSize).Where(id => (mask[id >> 6] >> (id & 63) & 1) == 1).ToList();
            int token = allowed[random.Next(allowed.Count)];
            (at, expected) = (bounded.AdvanceToken(at, token), reference.AdvanceToken(expected, token));
            Assert.Equal(expected.Accepting, at.Accepting);
        }
        Assert.True(bounded.Retired);
        Assert.False(reference.Retired);
        Assert.NotSame(bounded, GrammarAutomaton.For(Schema(schema), tokenizer, budget: 200_000));
    }
}
