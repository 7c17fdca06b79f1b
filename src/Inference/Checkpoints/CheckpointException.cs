namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>A checkpoint (config, weights or tokenizer files) that cannot be loaded; the message names the file and field.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);
