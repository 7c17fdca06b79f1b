using System.Text;
using Gpt2Orleans.Inference.Constraints;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Tests.Support;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>Constrained decoding through the engine: every finished output parses and validates, whatever the sampling, n, beams or batch.</summary>
[Collection(GoldenCollection.Name)]
public sealed class ConstrainedGenerationTests(GoldenData golden)
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;

    private GenerationEngine NewEngine() =>
        new(golden.Lm(), Tokenizer, new EngineOptions { ModelName = "golden-lm", KvBlocks = 512, BlockSize = 4, MaxBatchTokens = 64 });

    private sealed record Output(string Text, FinishReason Finish, List<int> Ids);

    private static async Task<Output[]> Run(GenerationEngine engine, string prompt, GenerationConfig config)
    {
        int width = config.IsBeamSearch ? config.NumReturnSequences : config.NumReturnSequences;
        var texts = Enumerable.Range(0, width).Select(_ => new StringBuilder()).ToArray();
        var ids = Enumerable.Range(0, width).Select(_ => new List<int>()).ToArray();
        var finish = new FinishReason?[width];
        await foreach (var e in engine.SubmitAsync(new EngineRequest("t", Tokenizer.Encode(prompt), config)))
        {
            texts[e.SequenceIndex].Append(e.TextDelta);
            ids[e.SequenceIndex].Add(e.TokenId);
            if (e.Finish is { } f) finish[e.SequenceIndex] = f;
        }
        return texts.Select((t, i) => new Output(t.ToString(), finish[i]!.Value, ids[i])).ToArray();
    }

    private static void AssertAllowed(string schema, Grammar grammar, Output output)
    {
        if (output.Finish == FinishReason.EndOfSequence)
        {
            Assert.True(grammar.Matches(output.Text), $"finished but incomplete: {output.Text}");
            SchemaValidator.AssertValid(schema, output.Text);
        }
        else
        {
            Assert.Equal(FinishReason.Length, output.Finish);
            var automaton = GrammarAutomaton.Untokenized(grammar);
            Assert.False(automaton.Advance(automaton.Initial, Encoding.UTF8.GetBytes(output.Text)).IsDead, $"not a prefix of a valid output: {output.Text}");
        }
    }

    [Fact]
    public async Task Random_schemas_give_valid_outputs_greedy_sampled_forked_and_beamed_alone_and_batched()
    {
        using var engine = NewEngine();
        int finished = 0, total = 0;
        for (int seed = 0; seed < 10; seed++)
        {
            var random = new Random(1000 + seed);
            string schema = RandomSchemas.Next(random, depth: 2);
            var constraint = new OutputConstraint(OutputConstraintKind.JsonSchema, schema);
            var grammar = constraint.Compile();
            GenerationConfig[] configs =
            [
                new() { MaxNewTokens = 48, Constraint = constraint },
                new() { MaxNewTokens = 48, DoSample = true, Seed = seed, NumReturnSequences = 3, Constraint = constraint },
                new() { MaxNewTokens = 24, NumBeams = 3, NumReturnSequences = 2, Constraint = constraint },
            ];
            var alone = new List<Output[]>();
            foreach (var config in configs) alone.Add(await Run(engine, "JSON:", config));
            // The same requests again, all at once and beside unconstrained traffic: the same outputs.
            var noise = Enumerable.Range(0, 3).Select(i => Run(engine, "Some free text", new GenerationConfig { MaxNewTokens = 20, DoSample = true, Seed = i })).ToList();
            var batched = await Task.WhenAll(configs.Select(c => Run(engine, "JSON:", c)));
            await Task.WhenAll(noise);
            for (int c = 0; c < configs.Length; c++)
            {
                Assert.Equal(alone[c].Select(o => o.Text), batched[c].Select(o => o.Text));
                foreach (var output in alone[c])
                {
                    AssertAllowed(schema, grammar, output);
                    total++;
                    if (output.Finish == FinishReason.EndOfSequence) finished++;
                }
            }
        }
        Assert.True(finished * 2 >= total, $"only {finished} of {total} outputs finished: the test would prove little");
        await Eventually.True(() => engine.Stats.BlocksUsed == 0);
    }

    [Fact]
    public async Task Regex_and_choice_constrain_the_whole_text_and_a_short_limit_ends_with_length()
    {
        using var engine = NewEngine();
        var regex = new OutputConstraint(OutputConstraintKind.Regex, "(yes|no), [0-9]{2} ü+", "guided_regex");
        foreach (var seed in new long[] { 1, 2, 3 })
        {
            var output = (await Run(engine, "Answer:", new GenerationConfig { MaxNewTokens = 32, DoSample = true, Seed = seed, Constraint = regex }))[0];
            Assert.Equal(FinishReason.EndOfSequence, output.Finish);
            Assert.Matches("^(yes|no), [0-9]{2} ü+$", output.Text);
        }
        var choice = new OutputConstraint(OutputConstraintKind.Choice, "[\"positive\",\"negative\",\"neutral\"]", "guided_choice");
        var picked = (await Run(engine, "Sentiment:", new GenerationConfig { MaxNewTokens = 8, Constraint = choice }))[0];
        Assert.Contains(picked.Text, new[] { "positive", "negative", "neutral" });
        // Too few tokens for the object to close: "length", as OpenAI reports it, and the text is a valid beginning.
        var schema = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"minLength\":40}},\"required\":[\"a\"]}";
        var cut = (await Run(engine, "JSON:", new GenerationConfig { MaxNewTokens = 3, Constraint = new OutputConstraint(OutputConstraintKind.JsonSchema, schema) }))[0];
        Assert.Equal(FinishReason.Length, cut.Finish);
        Assert.StartsWith("{", cut.Text.TrimStart());
    }

    [Fact]
    public async Task Stop_strings_and_logit_bias_combine_with_a_constraint()
    {
        using var engine = NewEngine();
        var constraint = new OutputConstraint(OutputConstraintKind.JsonSchema, "{\"type\":\"array\",\"items\":{\"enum\":[\"ab\",\"cd\"]},\"minItems\":3,\"maxItems\":3}");
        var free = (await Run(engine, "List:", new GenerationConfig { MaxNewTokens = 40, Constraint = constraint }))[0];
        Assert.Equal(FinishReason.EndOfSequence, free.Finish);
        SchemaValidator.AssertValid("{\"type\":\"array\",\"items\":{\"enum\":[\"ab\",\"cd\"]},\"minItems\":3,\"maxItems\":3}", free.Text);
        // A stop string inside the structure cuts it there (the client asked for that), and the text never holds it.
        var stopped = (await Run(engine, "List:", new GenerationConfig { MaxNewTokens = 40, Constraint = constraint, StopStrings = [","] }))[0];
        Assert.Equal(FinishReason.StopString, stopped.Finish);
        Assert.DoesNotContain(",", stopped.Text);
        Assert.StartsWith(stopped.Text, free.Text);
        // min_new_tokens bans eos, but a complete output must end: the grammar's forced eos wins.
        var minimum = (await Run(engine, "List:", new GenerationConfig { MaxNewTokens = 60, MinNewTokens = 50, Constraint = constraint }))[0];
        Assert.True(minimum.Finish == FinishReason.EndOfSequence, $"{minimum.Finish}: [{minimum.Text}] {string.Join(",", minimum.Ids)}");
        SchemaValidator.AssertValid("{\"type\":\"array\",\"items\":{\"enum\":[\"ab\",\"cd\"]},\"minItems\":3,\"maxItems\":3}", minimum.Text);
    }

    [Fact]
    public void A_schema_the_compiler_refuses_is_an_argument_error_naming_the_request_field()
    {
        using var engine = NewEngine();
        var constraint = new OutputConstraint(OutputConstraintKind.JsonSchema, "{\"oneOf\":[{\"type\":\"string\"}]}");
        var error = Assert.Throws<ArgumentException>(() => engine.SubmitAsync(new EngineRequest("t", Tokenizer.Encode("x"), new GenerationConfig { Constraint = constraint })));
        Assert.Equal("response_format", error.ParamName);
        Assert.Contains("oneOf", error.Message);
        var noEos = new GenerationConfig { Constraint = new OutputConstraint(OutputConstraintKind.JsonObject, ""), EosTokenIds = [] };
        Assert.Contains("eos", Assert.Throws<ArgumentException>(() => engine.SubmitAsync(new EngineRequest("t", Tokenizer.Encode("x"), noEos))).Message);
    }
}
