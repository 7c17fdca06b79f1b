using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Model;

/// <summary>
/// In training mode the dense forward builds an autograd graph whose gradients are the losses' true derivatives:
/// each parameter's gradient (a few entries of every tensor) equals central finite differences in float64, for the
/// LM loss under every activation and config flag that changes the math, and for the classification losses.
/// Dropout is set to zero here (its randomness is checked apart): finite differences need a deterministic loss.
/// </summary>
public sealed class GradientCheckTests
{
    private static readonly Gpt2Config Tiny = Gpt2Config.Default with
    {
        NEmbd = 8, NHead = 2, NLayer = 2, NPositions = 12, VocabSize = 23, BosTokenId = 0, EosTokenIds = [0], PadTokenId = 0,
        ResidPdrop = 0, EmbdPdrop = 0, AttnPdrop = 0, SummaryFirstDropout = 0, ClassifierDropout = 0,
    };

    private static readonly long[,] Ids = { { 3, 7, 1, 19, 4, 22 }, { 5, 5, 9, 2, 11, 0 } };

    private static T Build<T>(Gpt2Config config, Func<Gpt2Config, ScalarType, Device, T> create) where T : Gpt2PreTrainedModel
    {
        var model = create(config, ScalarType.Float64, CPU);
        Gpt2Initializer.Initialize(model, seed: 7);
        using (torch.no_grad())
            foreach (var p in model.parameters()) p.add_(torch.randn_like(p) * 0.05); // off HF's zero biases and unit norms: every term matters
        model.train();
        foreach (var p in model.parameters()) p.requires_grad_(true);
        return model;
    }

    [Theory]
    [InlineData("gelu_new", false, false, false)]
    [InlineData("gelu", false, false, false)]
    [InlineData("gelu_fast", false, false, false)]
    [InlineData("quick_gelu", false, false, false)]
    [InlineData("relu", false, false, false)]
    [InlineData("silu", false, false, false)]
    [InlineData("tanh", false, false, false)]
    [InlineData("gelu_new", true, false, false)]  // scale_attn_weights off
    [InlineData("gelu_new", false, true, false)]  // scale_attn_by_inverse_layer_idx
    [InlineData("gelu_new", false, false, true)]  // reorder_and_upcast_attn (the eager path)
    public void The_lm_loss_gradients_equal_finite_differences(string activation, bool unscaled, bool byLayer, bool reorder)
    {
        using var scope = torch.NewDisposeScope();
        var config = Tiny with { ActivationFunction = activation, ScaleAttnWeights = !unscaled, ScaleAttnByInverseLayerIdx = byLayer, ReorderAndUpcastAttn = reorder };
        using var model = Build(config, (c, d, dev) => new Gpt2LMHeadModel(c, d, dev));
        var ids = torch.tensor(Ids);
        var mask = torch.tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 0 } });
        Check(model, () => model.forward(ids, attentionMask: mask, labels: ids).Loss!, $"{activation} unscaled={unscaled} byLayer={byLayer} reorder={reorder}");
    }

    [Theory]
    [InlineData("single_label_classification")]
    [InlineData("multi_label_classification")]
    [InlineData("regression")]
    public void The_sequence_classification_loss_gradients_equal_finite_differences(string problem)
    {
        using var scope = torch.NewDisposeScope();
        int labels = problem == "regression" ? 1 : 3;
        var config = Tiny with { ProblemType = problem, Id2Label = Enumerable.Range(0, labels).ToDictionary(i => i, i => $"L{i}") };
        using var model = Build(config, (c, d, dev) => new Gpt2ForSequenceClassification(c, d, dev));
        var ids = torch.tensor(Ids);
        var target = problem switch
        {
            "single_label_classification" => torch.tensor(new long[] { 2, 0 }),
            "multi_label_classification" => torch.tensor(new double[,] { { 1, 0, 1 }, { 0, 1, 0 } }),
            _ => torch.tensor(new double[] { 0.3, -1.2 }),
        };
        Check(model, () => model.forward(ids, labels: target).Loss!, problem);
    }

    [Fact]
    public void The_token_classification_loss_gradients_equal_finite_differences()
    {
        using var scope = torch.NewDisposeScope();
        var config = Tiny with { Id2Label = Enumerable.Range(0, 4).ToDictionary(i => i, i => $"T{i}") };
        using var model = Build(config, (c, d, dev) => new Gpt2ForTokenClassification(c, d, dev));
        var ids = torch.tensor(Ids);
        var target = torch.tensor(new long[,] { { 0, 3, 1, -100, 2, 2 }, { 1, 1, 0, 3, -100, -100 } });
        Check(model, () => model.forward(ids, labels: target).Loss!, "token classification");
    }

    [Fact]
    public void Dropout_acts_only_in_training_mode()
    {
        using var scope = torch.NewDisposeScope();
        using var model = Gpt2LMHeadModel.CreateRandom(Tiny with { ResidPdrop = 0.5, EmbdPdrop = 0.5, AttnPdrop = 0.5 }, seed: 3);
        var ids = torch.tensor(Ids);
        var eval1 = model.forward(ids).Logits;
        var eval2 = model.forward(ids).Logits;
        Assert.True(eval1.equal(eval2).all().item<bool>(), "evaluation is deterministic");
        model.train();
        foreach (var p in model.parameters()) p.requires_grad_(true);
        var trained = model.forward(ids).Logits;
        Assert.True(trained.requires_grad, "training builds a graph");
        Assert.False(trained.allclose(eval1), "dropout changed the training forward");
        model.eval();
        Assert.True(model.forward(ids).Logits.equal(eval1).all().item<bool>(), "back in eval mode, dropout is off again");
    }

    /// <summary>Autograd's gradient against (L(θ + h) − L(θ − h)) / 2h for three entries of every parameter tensor.</summary>
    private static void Check(nn.Module model, Func<Tensor> loss, string what)
    {
        var parameters = model.named_parameters().ToList();
        foreach (var (_, p) in parameters) p.grad?.zero_();
        using (var value = loss()) value.backward();
        var random = new Random(11);
        const double h = 1e-6;
        double Evaluate() { using var noGrad = torch.no_grad(); using var value = loss(); return value.item<double>(); }
        foreach (var (name, p) in parameters)
        {
            var grad = p.grad ?? throw new InvalidOperationException($"{name} got no gradient ({what})");
            for (int k = 0; k < 3; k++)
            {
                long flat = random.NextInt64(p.numel());
                var at = new long[p.dim()];
                for (int d = (int)p.dim() - 1; d >= 0; d--) { at[d] = flat % p.shape[d]; flat /= p.shape[d]; }
                double analytic = grad[at].item<double>(), original;
                using (torch.no_grad()) original = p[at].item<double>();
                void Set(double v) { using var noGrad = torch.no_grad(); p[at] = torch.tensor(v, ScalarType.Float64); }
                Set(original + h);
                double up = Evaluate();
                Set(original - h);
                double down = Evaluate();
                Set(original);
                double numeric = (up - down) / (2 * h);
                Assert.True(Math.Abs(analytic - numeric) <= 1e-7 + 1e-5 * Math.Abs(numeric),
                    $"{what}: d loss / d {name}[{string.Join(",", at)}] autograd {analytic:G10}, finite differences {numeric:G10}");
            }
        }
    }
}
