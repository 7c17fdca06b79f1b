namespace Gpt2Orleans.Inference.Generation;

/// <summary>HF's <c>early_stopping</c> for beam search: true, false (heuristic) or "never" (canonical).</summary>
public enum EarlyStopping { False, True, Never }
