using Gpt2Orleans.Grains.Sessions;
using Gpt2Orleans.Inference.Engine;
using Gpt2Orleans.Inference.Generation;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Tests.Support;

public static class SessionCalls
{
    /// <summary>A session reference with its model named in the RequestContext, as the gateway calls it.</summary>
    public static ISessionGrain Get(IClusterClient client, string tenant, string session, string model)
    {
        RequestContext.Set(GrainKeys.ModelContextKey, model);
        return client.GetGrain<ISessionGrain>(GrainKeys.Session(tenant, session));
    }

    public static async Task<List<GeneratedToken>> Reply(ISessionGrain session, string text, int maxNewTokens = 6)
    {
        var tokens = new List<GeneratedToken>();
        await foreach (var token in session.Send(text, new GenerationParameters { MaxNewTokens = maxNewTokens })) tokens.Add(token);
        return tokens;
    }

    public static async Task<string> NewTenant(IClusterClient client, TenantQuota? quota = null)
    {
        string tenant = "tenant-" + Guid.NewGuid().ToString("N")[..8];
        await client.GetGrain<ITenantGrain>(tenant).Create(quota);
        return tenant;
    }

    /// <summary>
    /// What the inference library alone gives for the same conversation: the same template, greedy, the same stop
    /// string, each turn generated from the whole token history.
    /// </summary>
    public static List<List<int>> ExpectedReplies(string folder, string? systemPrompt, IReadOnlyList<string> turns, int maxNewTokens = 6) =>
        ExpectedReplies(turns.Select(_ => folder).ToList(), systemPrompt, turns, maxNewTokens);

    /// <summary>The same, with turn i answered by the weights in <paramref name="folders"/>[i] (a model swapped mid-conversation).</summary>
    public static List<List<int>> ExpectedReplies(IReadOnlyList<string> folders, string? systemPrompt, IReadOnlyList<string> turns, int maxNewTokens = 6)
    {
        var tokenizer = Gpt2Tokenizer.Default;
        var history = systemPrompt is null ? new List<int>() : [.. tokenizer.Encode(ChatTemplate.Default.SystemText(systemPrompt))];
        var replies = new List<List<int>>();
        for (int i = 0; i < turns.Count; i++)
        {
            using var model = Gpt2LMHeadModel.FromPretrained(folders[i]);
            using var engine = new GenerationEngine(model, tokenizer, new EngineOptions { KvBlocks = 64 });
            var config = GenerationConfig.FromDirectory(folders[i]) with { MaxNewTokens = maxNewTokens, StopStrings = [.. ChatTemplate.Default.StopStrings] };
            history.AddRange(tokenizer.Encode(ChatTemplate.Default.UserTurnText(turns[i], first: i == 0)));
            var ids = engine.GenerateAsync([history.ToArray()], config).GetAwaiter().GetResult()[0].Ids.ToList();
            replies.Add(ids);
            history.AddRange(ids);
        }
        return replies;
    }
}
