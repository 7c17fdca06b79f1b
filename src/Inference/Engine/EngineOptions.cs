namespace Gpt2Orleans.Inference.Engine;

/// <summary>How one model's engine shares its memory and its steps. Validated by <see cref="Validate"/>.</summary>
public sealed record EngineOptions
{
    /// <summary>Name used in metrics tags and in prefix-cache hashes.</summary>
    public string ModelName { get; init; } = "model";
    /// <summary>KV pool size in blocks; when null, <see cref="KvCacheBytes"/> decides.</summary>
    public int? KvBlocks { get; init; }
    public long KvCacheBytes { get; init; } = 512L << 20;
    public int BlockSize { get; init; } = 16;
    /// <summary>Tokens one step may process (decodes count one each; long prompts are prefilled in chunks).</summary>
    public int MaxBatchTokens { get; init; } = 512;
    public int MaxRunningSequences { get; init; } = 64;
    /// <summary>Requests waiting for admission beyond which new ones are rejected with <see cref="EngineOverloadedException"/>.</summary>
    public int MaxWaitingRequests { get; init; } = 1024;
    /// <summary>Admissions per round-robin turn, per tenant (default 1).</summary>
    public IReadOnlyDictionary<string, int> TenantWeights { get; init; } = new Dictionary<string, int>();
    /// <summary>Most sequences a tenant may have running at once (null: no cap).</summary>
    public int? MaxSequencesPerTenant { get; init; }
    /// <summary>libtorch intra-op threads for this engine's steps (null: one per core).</summary>
    public int? Threads { get; init; }
    /// <summary>
    /// Every sequence's logits the same bit for bit whatever else shares its step (so a seeded sample is the same alone
    /// or under load), at the cost of padding small steps to 16 rows of libtorch GEMM (<see cref="Model.BatchInvariantMatmul"/>).
    /// </summary>
    public bool BatchInvariant { get; init; }
    /// <summary>
    /// The KV cache's dtype (null: the model's). bf16 under a float32 model halves the KV's memory and the bytes a
    /// decode step's attention reads, at the cost of rounding K and V to bf16 (8 significant bits) as they are stored.
    /// </summary>
    public TorchSharp.torch.ScalarType? KvDType { get; init; }
    /// <summary>Whether our CPU mat-vec kernel serves steps of few tokens (<see cref="Model.CpuMatVec"/>); off: libtorch does.</summary>
    public bool MatVecKernel { get; init; } = true;

    public void Validate()
    {
        static void Require(bool ok, string name, string message)
        {
            if (!ok) throw new ArgumentException($"{name}: {message}", name);
        }
        Require(KvBlocks is null or > 0, nameof(KvBlocks), "must be positive");
        Require(KvCacheBytes > 0, nameof(KvCacheBytes), "must be positive");
        Require(BlockSize is > 0 and <= 1024, nameof(BlockSize), "must be between 1 and 1024");
        Require(MaxBatchTokens > 0, nameof(MaxBatchTokens), "must be positive");
        Require(MaxRunningSequences > 0, nameof(MaxRunningSequences), "must be positive");
        Require(MaxWaitingRequests > 0, nameof(MaxWaitingRequests), "must be positive");
        Require(Threads is null or > 0, nameof(Threads), "must be positive");
        Require(KvDType is null || KvCache.KvBlockPool.Supports(KvDType.Value), nameof(KvDType), "must be float32, bfloat16 or float16");
        Require(MaxSequencesPerTenant is null or > 0, nameof(MaxSequencesPerTenant), "must be positive");
        Require(TenantWeights.Values.All(w => w > 0), nameof(TenantWeights), "weights must be positive");
    }
}
