using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Generation;

/// <summary>Sets chosen (row, token) scores to −inf in one indexed write: the shared step of the banning processors.</summary>
internal static class TokenMask
{
    public static Tensor Ban(Tensor scores, IReadOnlyList<(int Row, int Token)> banned)
    {
        if (banned.Count == 0) return scores;
        var rows = torch.tensor(banned.Select(b => (long)b.Row).ToArray(), device: scores.device);
        var tokens = torch.tensor(banned.Select(b => (long)b.Token).ToArray(), device: scores.device);
        return scores.index_put_(torch.tensor(double.NegativeInfinity, scores.dtype, scores.device), rows, tokens);
    }

    /// <summary>The same tokens banned in every row.</summary>
    public static Tensor BanColumns(Tensor scores, IReadOnlyCollection<int> tokens)
    {
        if (tokens.Count == 0) return scores;
        var columns = torch.tensor(tokens.Select(t => (long)t).ToArray(), device: scores.device);
        return scores.index_fill_(1, columns, double.NegativeInfinity);
    }
}
