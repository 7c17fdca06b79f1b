namespace Gpt2Orleans.Inference.Generation;

/// <summary>Why a sequence stopped: an eos token, a stop string, or the length limit.</summary>
public enum FinishReason { Length, EndOfSequence, StopString }

public static class FinishReasons
{
    /// <summary>OpenAI's (and vLLM's) name, the one every front end reports: "stop" for an eos or a stop string, "length" for the limit.</summary>
    public static string Name(this FinishReason reason) => reason == FinishReason.Length ? "length" : "stop";
}
