using Gpt2Orleans.Inference.Engine;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>One generation through the engine, collected: its token ids, the sequence it kept (if asked) and its usage.</summary>
public sealed record EngineTurn(List<int> Ids, long? Kept, Usage Usage)
{
    public static async Task<EngineTurn> Run(GenerationEngine engine, EngineRequest request)
    {
        var ids = new List<int>();
        long? kept = null;
        Usage? usage = null;
        await foreach (var e in engine.SubmitAsync(request))
        {
            ids.Add(e.TokenId);
            if (e.Finish is not null) { kept = e.KeptSequence; usage = e.Usage; }
        }
        return new EngineTurn(ids, kept, usage!);
    }
}
