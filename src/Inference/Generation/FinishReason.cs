namespace Gpt2Orleans.Inference.Generation;

/// <summary>Why a sequence stopped: an eos token, a stop string, or the length limit.</summary>
public enum FinishReason { Length, EndOfSequence, StopString }
