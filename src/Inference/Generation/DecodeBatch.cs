using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>
/// The rows of one <c>generate</c> call across steps: their token ids, attention mask, next positions and KV
/// cache. Each prompt is prefilled once and its cache copied to its <paramref name="copies"/> rows (returned
/// sequences or beams), which equals what HF computes on its expanded batch. Positions follow HF's generate:
/// cumsum(mask) − 1, with padding at 1.
/// </summary>
internal sealed class DecodeBatch : IDisposable
{
    private readonly Gpt2LMHeadModel _model;
    private readonly BatchEncoding _prompts;
    private readonly int _copies;
    private readonly KeyValueCache _cache;
    private List<int>[] _ids;
    private long[][] _mask;
    private long[] _realTokens; // per row: real (unpadded) tokens so far; the next token sits at position _realTokens − 1 once appended
    private int[]? _lastTokens;
    private IDisposable? _decodePhase;

    public IReadOnlyList<IReadOnlyList<int>> Ids => _ids;
    public int Rows => _ids.Length;

    public DecodeBatch(Gpt2LMHeadModel model, BatchEncoding prompts, int copies, int maxNewTokens)
    {
        _model = model;
        _prompts = prompts;
        _copies = copies;
        _cache = new KeyValueCache(model.Config, prompts.BatchSize, prompts.Length + Math.Max(maxNewTokens, 1), model.DType, model.Device);
        int rows = prompts.BatchSize * copies;
        _ids = Enumerable.Range(0, rows).Select(r => prompts.InputIds[r / copies].Select(v => (int)v).ToList()).ToArray();
        _mask = Enumerable.Range(0, rows).Select(r => (long[])prompts.AttentionMask[r / copies].Clone()).ToArray();
        _realTokens = _mask.Select(m => m.Sum()).ToArray();
    }

    /// <summary>Runs the model on the prompts (first call) or on the last appended tokens: (rows, V) float32 logits.</summary>
    public Tensor NextLogits()
    {
        return _lastTokens is null ? Prefill() : Decode(_lastTokens);
    }

    private Tensor Prefill()
    {
        bool padded = _prompts.AttentionMask.Any(m => m.Contains(0));
        using var output = _model.forward(_prompts.InputIdsTensor(_model.Device), padded ? _prompts.AttentionMaskTensor(_model.Device) : null,
            BatchEncoding.ToTensor(_prompts.PositionIds(), _model.Device), _cache, lastPositionOnly: true);
        var logits = output.Logits.squeeze(1).to(ScalarType.Float32);
        if (_copies == 1) return logits;
        using var repeat = torch.arange(_prompts.BatchSize, device: _model.Device).repeat_interleave(_copies);
        _cache.SelectRows(repeat);
        return logits.index_select(0, repeat);
    }

    private Tensor Decode(int[] tokens)
    {
        // The whole decode phase, not only each forward pass: the processors and sampling between steps would
        // otherwise wake libtorch's spinning workers (see CpuMatVec).
        _decodePhase ??= CpuMatVec.DecodeStep(_model.DType, _model.Device, tokens.Length);
        bool padded = _mask.Any(m => m.Contains(0));
        using var output = _model.forward(
            torch.tensor(tokens.Select(t => (long)t).ToArray(), [tokens.Length, 1], device: _model.Device),
            padded ? BatchEncoding.ToTensor(_mask, _model.Device) : null,
            torch.tensor(_realTokens.Select(p => p - 1).ToArray(), [_realTokens.Length, 1], device: _model.Device),
            _cache, lastPositionOnly: true);
        return output.Logits.squeeze(1).to(ScalarType.Float32);
    }

    /// <summary>Beam search: row r continues from row <paramref name="sourceRows"/>[r] (ids, mask, positions and cache).</summary>
    public void Reorder(IReadOnlyList<int> sourceRows)
    {
        _ids = sourceRows.Select(s => _ids[s].ToList()).ToArray();
        _mask = sourceRows.Select(s => _mask[s]).ToArray();
        _realTokens = sourceRows.Select(s => _realTokens[s]).ToArray();
        using var index = torch.tensor(sourceRows.Select(s => (long)s).ToArray(), device: _model.Device);
        _cache.SelectRows(index);
    }

    /// <summary>Appends one token per row; it is fed to the model by the next <see cref="NextLogits"/>.</summary>
    public void Append(int[] tokens)
    {
        for (int r = 0; r < _ids.Length; r++)
        {
            _ids[r].Add(tokens[r]);
            _mask[r] = [.. _mask[r], 1];
            _realTokens[r]++;
        }
        _lastTokens = tokens;
    }

    public void Dispose()
    {
        _decodePhase?.Dispose();
        _cache.Dispose();
    }
}
