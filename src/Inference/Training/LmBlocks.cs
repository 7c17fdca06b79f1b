namespace Gpt2Orleans.Inference.Training;

/// <summary>A token stream cut into blocks of <c>block_size</c> for causal LM training, as HF's <c>run_clm</c> groups texts (the remainder is dropped).</summary>
public static class LmBlocks
{
    public static long[][] Split(IReadOnlyList<int> ids, int blockSize, int nPositions)
    {
        if (blockSize < 2 || blockSize > nPositions) throw new ArgumentException($"block_size must be between 2 and the model's n_positions ({nPositions}), got {blockSize}", "block_size");
        int count = ids.Count / blockSize;
        if (count == 0) throw new ArgumentException($"the text holds {ids.Count} tokens, fewer than one block of {blockSize}", "block_size");
        return Enumerable.Range(0, count).Select(b => ids.Skip(b * blockSize).Take(blockSize).Select(id => (long)id).ToArray()).ToArray();
    }
}
