using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>Element-wise closeness: |actual − expected| ≤ atol + rtol·|expected|, optionally only where a mask is 1.</summary>
public static class TensorAssert
{
    public static void Close(Tensor expected, Tensor actual, double atol = 1e-4, double rtol = 1e-4, Tensor? mask = null, string what = "")
    {
        using var scope = torch.NewDisposeScope();
        Assert.Equal(expected.shape, actual.shape);
        var e = expected.to(ScalarType.Float64).cpu();
        var a = actual.to(ScalarType.Float64).cpu();
        var diff = (a - e).abs();
        var allowed = e.abs() * rtol + atol;
        var bad = diff.gt(allowed);
        if (mask is not null) bad = bad.logical_and(mask.to(ScalarType.Bool).cpu());
        long count = bad.sum().item<long>();
        var shown = mask is null ? diff : diff.masked_fill(mask.to(ScalarType.Bool).cpu().logical_not(), 0);
        Assert.True(count == 0, $"{what}: {count} of {e.numel()} elements differ; max |diff| {shown.max().item<double>():E3}");
    }

    /// <summary>Largest |a − b| (over the mask, if given).</summary>
    public static double MaxDiff(Tensor expected, Tensor actual, Tensor? mask = null)
    {
        using var scope = torch.NewDisposeScope();
        var diff = (actual.to(ScalarType.Float64).cpu() - expected.to(ScalarType.Float64).cpu()).abs();
        if (mask is not null) diff = diff.masked_fill(mask.to(ScalarType.Bool).cpu().logical_not(), 0);
        return diff.max().item<double>();
    }
}
