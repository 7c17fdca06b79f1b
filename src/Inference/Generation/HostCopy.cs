using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// Several tensors brought to the host in one device-to-host copy (a GPU syncs once per copy): each flattened,
/// converted, and concatenated in order.
/// </summary>
public static class HostCopy
{
    /// <summary>As float32: exact for float32 values and for ids below 2^24 (any vocabulary).</summary>
    public static float[] Float32(params Tensor[] parts) => Copy<float>(ScalarType.Float32, parts);

    /// <summary>As float64: exact for float32 values and for any index below 2^53 (flat beam × vocabulary indices).</summary>
    public static double[] Float64(params Tensor[] parts) => Copy<double>(ScalarType.Float64, parts);

    private static long s_copies;

    /// <summary>Copies made by this process so far (the tests hold the engine's steps to their budget of copies).</summary>
    internal static long Copies => Interlocked.Read(ref s_copies);

    private static T[] Copy<T>(ScalarType dtype, Tensor[] parts) where T : unmanaged
    {
        Interlocked.Increment(ref s_copies);
        using var scope = NewDisposeScope();
        return cat(parts.Select(p => p.reshape(-1).to(dtype)).ToArray(), 0).cpu().data<T>().ToArray();
    }
}
