using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Model;

/// <summary>
/// The heads the golden data does not cover (question answering, double heads) and the heads' losses, checked
/// against the transformer's own outputs and losses computed by hand from HF's definitions.
/// </summary>
public sealed class TaskHeadsTests : IDisposable
{
    private static readonly Gpt2Config Small = Gpt2Config.Default with
    {
        NEmbd = 32, NHead = 2, NLayer = 2, NPositions = 32, VocabSize = 400, BosTokenId = 0, EosTokenIds = [0], PadTokenId = 1,
        Id2Label = Gpt2Config.DefaultLabels(3),
    };
    private readonly string _dir = Directory.CreateTempSubdirectory("gpt2o-heads-").FullName;

    private static T Random<T>(Func<Gpt2Config, ScalarType, Device, T> create, Gpt2Config? config = null) where T : Gpt2PreTrainedModel
    {
        var model = create(config ?? Small, ScalarType.Float32, torch.CPU);
        Gpt2Initializer.Initialize(model, seed: 4);
        model.eval(); // a module starts in training mode (dropout on), as in PyTorch; these checks are of evaluation
        return model;
    }

    private static Tensor Ids(params long[][] rows) => Support.GoldenJson.Tensor(System.Text.Json.JsonSerializer.SerializeToElement(rows))!;

    [Fact]
    public void Question_answering_gives_start_and_end_logits_per_token_and_hf_loss()
    {
        using var scope = torch.NewDisposeScope();
        using var model = Random((c, d, v) => new Gpt2ForQuestionAnswering(c, d, v));
        var ids = Ids([5, 6, 7, 8], [9, 10, 11, 12]);
        var start = torch.tensor(new long[] { 1, 2 });
        var end = torch.tensor(new long[] { 3, 99 }); // out of range: clamped to T and ignored, as HF does
        using var output = model.forward(ids, startPositions: start, endPositions: end);
        Assert.Equal([2L, 4L], output.StartLogits.shape);
        Assert.Equal([2L, 4L], output.EndLogits.shape);

        using var hidden = model.transformer.forward(ids);
        var logits = model.qa_outputs.forward(hidden.LastHiddenState);
        TensorAssert.Close(logits.select(-1, 0), output.StartLogits, 1e-6, 1e-6);
        var startLoss = nn.functional.cross_entropy(output.StartLogits, start);
        var endLoss = nn.functional.cross_entropy(output.EndLogits.narrow(0, 0, 1), end.narrow(0, 0, 1));
        Assert.Equal(((startLoss + endLoss) / 2).item<float>(), output.Loss!.item<float>(), 1e-5);
    }

    [Fact]
    public void Double_heads_scores_each_choice_at_its_token_and_shares_the_lm_head()
    {
        using var scope = torch.NewDisposeScope();
        using var model = Random((c, d, v) => new Gpt2DoubleHeadsModel(c, d, v));
        var ids = Ids([5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]).view(1, 3, 4); // one example, three choices
        var mcTokenIds = torch.tensor(new long[] { 3, 1, 2 }).view(1, 3);
        var mcLabels = torch.tensor(new long[] { 2 });
        using var output = model.forward(ids, mcTokenIds, labels: ids, mcLabels: mcLabels);
        Assert.Equal([1L, 3L, 4L, Small.VocabSize], output.Logits.shape);
        Assert.Equal([1L, 3L], output.McLogits.shape);

        using var hidden = model.transformer.forward(ids.view(3, 4));
        var summary = model.multiple_choice_head.summary!;
        for (int c = 0; c < 3; c++)
        {
            var vector = hidden.LastHiddenState[c, mcTokenIds[0, c].item<long>()];
            float expected = (vector.matmul(summary.weight!.t()) + summary.bias!).item<float>();
            Assert.Equal(expected, output.McLogits[0, c].item<float>(), 1e-5);
        }
        Assert.Equal(nn.functional.cross_entropy(output.McLogits, mcLabels).item<float>(), output.McLoss!.item<float>(), 1e-5);

        // The LM head is tied to wte: the same logits as the LM model loaded from the same weights.
        model.SavePretrained(_dir);
        using var lm = Gpt2LMHeadModel.FromPretrained(_dir, new ModelLoadOptions { Strict = false });
        using var lmOutput = lm.forward(ids.view(3, 4));
        TensorAssert.Close(lmOutput.Logits, output.Logits.view(3, 4, -1), 1e-5, 1e-5);
    }

    [Fact]
    public void Classification_losses_follow_hfs_problem_types()
    {
        using var scope = torch.NewDisposeScope();
        using var sequence = Random((c, d, v) => new Gpt2ForSequenceClassification(c, d, v));
        var ids = Ids([5, 6, 7, 1], [9, 10, 11, 12]);
        var labels = torch.tensor(new long[] { 2, 0 });
        using var single = sequence.forward(ids, labels: labels);
        Assert.Equal(nn.functional.cross_entropy(single.Logits, labels).item<float>(), single.Loss!.item<float>(), 1e-5);
        Assert.Equal([2L, 3L], single.PooledIndex);

        var multiLabels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 1 }).view(2, 3);
        using var multi = sequence.forward(ids, labels: multiLabels);
        Assert.Equal(nn.functional.binary_cross_entropy_with_logits(multi.Logits, multiLabels).item<float>(), multi.Loss!.item<float>(), 1e-5);

        using var regression = Random((c, d, v) => new Gpt2ForSequenceClassification(c, d, v), Small with { Id2Label = Gpt2Config.DefaultLabels(1) });
        var targets = torch.tensor(new float[] { 0.5f, -1f });
        using var mse = regression.forward(ids, labels: targets);
        Assert.Equal(nn.functional.mse_loss(mse.Logits.squeeze(), targets).item<float>(), mse.Loss!.item<float>(), 1e-5);

        using var tokens = Random((c, d, v) => new Gpt2ForTokenClassification(c, d, v));
        var tokenLabels = Ids([0, 1, 2, -100], [2, 2, -100, -100]);
        using var tokenOutput = tokens.forward(ids, labels: tokenLabels);
        Assert.Equal(nn.functional.cross_entropy(tokenOutput.Logits.view(-1, 3), tokenLabels.view(-1), ignore_index: -100).item<float>(),
            tokenOutput.Loss!.item<float>(), 1e-5);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
