namespace Gpt2Orleans.Inference.Training;

/// <summary>
/// One example as the model sees it: token ids and labels (causal LM: the ids themselves; sequence classification:
/// one class; token classification: a class or −100 per token).
/// </summary>
public sealed record TrainingExample(long[] InputIds, long[] Labels);
