using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// HF's <c>SequenceSummary</c> (the double-heads model's multiple-choice head): pick one vector per sequence
/// (summary_type last, first, mean or cls_index), project it (summary_use_proj), apply summary_activation.
/// </summary>
public sealed class SequenceSummary : nn.Module
{
    public readonly Linear? summary;
    private readonly string _type;
    private readonly Func<Tensor, Tensor>? _activation;
    private readonly double _firstDropout, _lastDropout;

    public SequenceSummary(Gpt2Config config, int numLabels, ScalarType dtype, Device device) : base(nameof(SequenceSummary))
    {
        _type = config.SummaryType;
        (_firstDropout, _lastDropout) = (config.SummaryFirstDropout, config.SummaryLastDropout ?? 0);
        if (config.SummaryUseProj)
        {
            long outputs = config.SummaryProjToLabels && numLabels > 0 ? numLabels : config.NEmbd;
            summary = new Linear(config.NEmbd, outputs, hasBias: true, dtype, device);
        }
        if (config.SummaryActivation is { } name) _activation = name == "tanh" ? torch.tanh : Activations.Get(name);
        RegisterComponents();
    }

    /// <param name="hidden">(..., T, E)</param>
    /// <param name="clsIndex">(...) the position to summarise for cls_index; null means the last position.</param>
    public Tensor forward(Tensor hidden, Tensor? clsIndex)
    {
        long t = hidden.shape[^2], e = hidden.shape[^1];
        Tensor output = _type switch
        {
            "last" => hidden.select(-2, t - 1),
            "first" => hidden.select(-2, 0),
            "mean" => hidden.mean([-2]),
            _ => hidden.gather(-2, (clsIndex ?? torch.full(hidden.shape[..^2], t - 1, ScalarType.Int64, hidden.device))
                    .to(hidden.device).to(ScalarType.Int64).unsqueeze(-1).unsqueeze(-1)
                    .expand([.. hidden.shape[..^2], 1, e])).squeeze(-2),
        };
        output = TrainingDropout.Apply(output, _firstDropout, training);
        if (summary is not null) output = summary.forward(output);
        if (_activation is not null) output = _activation(output);
        return TrainingDropout.Apply(output, _lastDropout, training);
    }
}
