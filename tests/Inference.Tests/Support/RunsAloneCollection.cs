namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>
/// Tests that read process-wide state and must not share the process with others running: live-tensor and memory
/// counts, the host-copy counter, libtorch's global generator (dropout while training).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunsAloneCollection
{
    public const string Name = "runs alone";
}
