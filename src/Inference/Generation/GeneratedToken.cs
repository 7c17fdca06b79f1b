namespace Gpt2Orleans.Inference.Generation;

/// <summary>A token as it is generated (sampling and greedy search), for streaming to a terminal or a client.</summary>
public sealed record GeneratedToken(int PromptIndex, int SequenceIndex, int TokenId, string TextDelta);
