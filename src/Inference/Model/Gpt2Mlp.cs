using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>HF's <c>GPT2MLP</c>: c_fc (E → n_inner), activation, c_proj (n_inner → E).</summary>
public sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    public readonly Conv1D c_fc;
    public readonly Conv1D c_proj;
    private readonly Func<Tensor, Tensor> _act;
    private readonly double _residPdrop;
    /// <summary>The config's <c>activation_function</c>.</summary>
    internal string Activation { get; }

    public Gpt2Mlp(Gpt2Config config, ScalarType dtype, Device device) : base("GPT2MLP")
    {
        c_fc = new Conv1D(config.InnerDim, config.NEmbd, dtype, device);
        c_proj = new Conv1D(config.NEmbd, config.InnerDim, dtype, device);
        _act = Activations.Get(config.ActivationFunction);
        Activation = config.ActivationFunction;
        _residPdrop = config.ResidPdrop;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => forward(x, KernelPolicy.Dense);

    internal Tensor forward(Tensor x, KernelPolicy policy) => TrainingDropout.Apply(c_proj.forward(_act(c_fc.forward(x, policy)), policy), _residPdrop, training);
}
