using Gpt2Orleans.Inference.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// A module with one [out, in] weight, allocated empty (loading a checkpoint skips random initialisation), that
/// quantization can replace: <see cref="Linear"/> and <see cref="Embedding"/>. Adopting a quantized weight unregisters
/// and frees the dense one.
/// </summary>
public abstract class QuantizableModule : nn.Module<Tensor, Tensor>, IQuantizable
{
    public Parameter? weight; // [out, in]; null once quantized

    protected QuantizableModule(string name, long outFeatures, long inFeatures, ScalarType dtype, Device device) : base(name)
    {
        weight = Parameters.Empty([outFeatures, inFeatures], dtype, device);
        WeightShape = ((int)outFeatures, (int)inFeatures);
    }

    public QuantizedWeight? Quantized { get; private set; }

    public (int Out, int In) WeightShape { get; }

    public Tensor DenseWeightOutIn => weight ?? throw new InvalidOperationException("the weight is quantized");

    public void Adopt(QuantizedWeight quantized)
    {
        IQuantizable.CheckShape(this, quantized);
        Quantized = quantized;
        ConditionallyRegisterParameter(nameof(weight), (Parameter?)null);
        weight?.Dispose();
        weight = null;
    }
}
