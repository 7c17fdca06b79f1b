using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Model;

/// <summary>
/// A bf16 weight multiplied through float32 slices (what CPUs without AVX512_BF16 do instead of libtorch's slow bf16
/// GEMM) equals the float32 product of the same values, rounded once to bf16, whichever slices and padding it takes.
/// </summary>
public sealed class SlicedFloat32LinearTests
{
    [Theory]
    [InlineData(1, 96, 301, 1)]
    [InlineData(70, 96, 50_257, 1)] // a vocabulary's 50,257 outputs of 96 inputs: two slices of the 16 MB buffer
    [InlineData(3, 64, 50, 16)]     // batch-invariant padding to 16 rows
    public void Equals_the_float32_product_rounded_once(int rows, int inFeatures, int outFeatures, int minRows)
    {
        using var scope = torch.NewDisposeScope();
        var weight = torch.randn(outFeatures, inFeatures).to(ScalarType.BFloat16);
        var bias = torch.randn(outFeatures).to(ScalarType.BFloat16);
        var x = torch.randn(rows, 1, inFeatures).to(ScalarType.BFloat16);
        var actual = SlicedFloat32Linear.Dense(x, weight, bias, minRows);
        Assert.Equal(new long[] { rows, 1, outFeatures }, actual.shape);
        Assert.Equal(ScalarType.BFloat16, actual.dtype);
        var expected = nn.functional.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias.to(ScalarType.Float32)).to(ScalarType.BFloat16);
        // Float32 sums in another order can round to the neighbouring bf16: one bf16 step (2⁻⁸ relative) at most.
        TensorAssert.Close(expected.to(ScalarType.Float32), actual.to(ScalarType.Float32), atol: 1e-2, rtol: 8e-3, what: $"{rows} × {inFeatures} → {outFeatures}");
    }

    [Fact]
    public void It_stands_aside_when_a_gradient_must_flow_or_the_weight_is_not_bf16()
    {
        using var scope = torch.NewDisposeScope();
        var bf16 = torch.randn(4, 8).to(ScalarType.BFloat16);
        var x = torch.randn(2, 8).to(ScalarType.BFloat16);
        Assert.False(SlicedFloat32Linear.Serves(x, torch.randn(4, 8)));
        Assert.Equal(!SlicedFloat32Linear.NativeBFloat16, SlicedFloat32Linear.Serves(x, bf16));
        Assert.False(SlicedFloat32Linear.Serves(x.requires_grad_(true), bf16));
        using (torch.no_grad()) Assert.Equal(!SlicedFloat32Linear.NativeBFloat16, SlicedFloat32Linear.Serves(x, bf16));
    }
}
