using System.Runtime.InteropServices;
using Gpt2Orleans.Inference.Checkpoints;

namespace Gpt2Orleans.Inference.Tests.Checkpoints;

/// <summary>The checkpoint loader's finiteness check on raw bytes, for every float dtype, in the vector body and the tail.</summary>
public sealed class FiniteValuesTests
{
    private static byte[] Bytes(string dtype, IEnumerable<double> values) => dtype switch
    {
        "F32" => MemoryMarshal.AsBytes(values.Select(v => (float)v).ToArray().AsSpan()).ToArray(),
        "F64" => MemoryMarshal.AsBytes(values.ToArray().AsSpan()).ToArray(),
        "F16" => MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
        _ => MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits((float)v) >> 16)).ToArray().AsSpan()).ToArray(), // BF16: the top half of a float32
    };

    private static double Largest(string dtype) => dtype switch
    {
        "F32" => float.MaxValue, "F64" => double.MaxValue, "F16" => (double)Half.MaxValue, _ => 3.3895313892515355e38, // bf16's largest
    };

    [Theory]
    [InlineData("F32")]
    [InlineData("F64")]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void Every_non_finite_value_is_found_wherever_it_is_and_finite_extremes_pass(string dtype)
    {
        foreach (int length in new[] { 1, 7, 64, 67, 1000 })
        {
            var finite = Enumerable.Range(0, length).Select(i => (i % 5) switch { 0 => Largest(dtype), 1 => -Largest(dtype), 2 => 1e-40, 3 => -0.0, _ => i * 0.5 }).ToArray();
            Assert.True(FiniteValues.All(Bytes(dtype, finite), dtype), $"{dtype} × {length}: finite values flagged");
            foreach (int at in new[] { 0, length / 2, length - 1 })
                foreach (double bad in new[] { double.NaN, double.PositiveInfinity, double.NegativeInfinity })
                {
                    var values = (double[])finite.Clone();
                    values[at] = bad;
                    Assert.False(FiniteValues.All(Bytes(dtype, values), dtype), $"{dtype} × {length}: {bad} at {at} missed");
                }
        }
    }

    [Fact]
    public void Integer_tensors_and_empty_ones_have_nothing_to_check()
    {
        Assert.True(FiniteValues.All([0xFF, 0xFF, 0xFF, 0xFF], "I32"));
        Assert.True(FiniteValues.All([], "F32"));
    }
}
