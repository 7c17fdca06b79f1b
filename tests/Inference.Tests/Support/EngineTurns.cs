using Gpt2Orleans.Inference.Engine;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>One generation through the engine, collected: its token ids and its usage.</summary>
public sealed record EngineTurn(List<int> Ids, Usage Usage)
{
    public static async Task<EngineTurn> Run(GenerationEngine engine, EngineRequest request)
    {
        var ids = new List<int>();
        Usage? usage = null;
        await foreach (var e in engine.SubmitAsync(request))
        {
            ids.Add(e.TokenId);
            if (e.Finish is not null) usage = e.Usage;
        }
        return new EngineTurn(ids, usage!);
    }
}
