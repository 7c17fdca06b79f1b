using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// A module whose weight [out, in] can be replaced by a <see cref="QuantizedWeight"/> (the projections, the LM head,
/// the tied embedding). Adopting one frees the dense weight, so a quantized model holds only the integer levels and scales.
/// </summary>
public interface IQuantizable
{
    /// <summary>The quantized weight, or null while the weight is dense.</summary>
    QuantizedWeight? Quantized { get; }

    /// <summary>The weight's [out, in] shape.</summary>
    (int Out, int In) WeightShape { get; }

    /// <summary>The dense weight as [out, in] (to quantize it).</summary>
    Tensor DenseWeightOutIn { get; }

    /// <summary>Replaces the dense weight by <paramref name="quantized"/>, freeing it.</summary>
    void Adopt(QuantizedWeight quantized);

    /// <summary>Quantizes the dense weight and adopts the result.</summary>
    void Quantize(QuantizationConfig config)
    {
        if (Quantized is not null) throw new InvalidOperationException("the weight is already quantized");
        Adopt(QuantizedWeight.FromTensor(DenseWeightOutIn, config));
    }

    internal static void CheckShape(IQuantizable module, QuantizedWeight quantized)
    {
        if ((quantized.OutFeatures, quantized.InFeatures) != module.WeightShape)
            throw new ArgumentException($"a quantized weight [{quantized.OutFeatures}, {quantized.InFeatures}] does not fit a [{module.WeightShape.Out}, {module.WeightShape.In}] module");
    }
}
