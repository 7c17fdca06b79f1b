using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// The mask every layer of one forward pass shares: either "plain causal" (no tensor; the fused kernel's
/// <c>is_causal</c>) or an additive bias (B or 1, 1, T, past+T) holding 0 where a query may attend and the dtype's
/// minimum where it may not (HF adds finfo.min; a finite value also keeps fully-masked padding rows free of NaN).
/// </summary>
public sealed class AttentionMask : IDisposable
{
    public Tensor? Bias { get; }
    public bool IsCausal { get; }
    private readonly bool _ownsBias;

    private AttentionMask(Tensor? bias, bool isCausal, bool ownsBias = true) { Bias = bias; IsCausal = isCausal; _ownsBias = ownsBias; }

    /// <summary>A mask over a bias someone else owns (a paged batch's, shared by every layer).</summary>
    public static AttentionMask Borrowing(Tensor bias) => new(bias, false, ownsBias: false);

    /// <param name="attentionMask">(B, past+T) of 1 (attend) and 0 (padding), or null for no padding.</param>
    /// <param name="explicitBias">Build the tensor even where <c>is_causal</c> would do (the eager path needs it).</param>
    public static AttentionMask Create(Tensor? attentionMask, long queryLength, long pastLength, ScalarType dtype, Device device, bool explicitBias)
    {
        long keyLength = pastLength + queryLength;
        if (attentionMask is null && queryLength == 1) return new AttentionMask(null, false);
        if (attentionMask is null && pastLength == 0 && !explicitBias) return new AttentionMask(null, true);

        using var scope = torch.NewDisposeScope();
        var keyPositions = torch.arange(keyLength, device: device).unsqueeze(0);                        // (1, L)
        var queryPositions = torch.arange(pastLength, keyLength, device: device).unsqueeze(1);          // (T, 1)
        var allowed = keyPositions.le(queryPositions).unsqueeze(0).unsqueeze(0);                        // (1, 1, T, L)
        if (attentionMask is not null)
            allowed = allowed.logical_and(attentionMask.to(device).to(ScalarType.Bool).unsqueeze(1).unsqueeze(1)); // (B, 1, T, L)
        var bias = torch.zeros(allowed.shape, dtype, device).masked_fill_(allowed.logical_not(), torch.finfo(dtype).min);
        return new AttentionMask(bias.MoveToOuterDisposeScope(), false);
    }

    public void Dispose()
    {
        if (_ownsBias) Bias?.Dispose();
    }
}
