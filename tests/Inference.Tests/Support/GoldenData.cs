using System.Text.Json;
using Gpt2Orleans.Inference.Checkpoints;
using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>
/// Hugging Face transformers' outputs on tiny checkpoints (copied from shared/golden into Golden/): the cases,
/// their expected tensors and the models, loaded once per test run.
/// </summary>
public sealed class GoldenData : IDisposable
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "Golden");

    private readonly JsonDocument _cases;
    private readonly SafetensorsFile _expected;
    private readonly Lazy<Gpt2LMHeadModel> _lm;
    private readonly Lazy<Gpt2LMHeadModel> _lmOriginalLayout;
    private readonly Lazy<Gpt2ForSequenceClassification> _seqCls;
    private readonly Lazy<Gpt2ForTokenClassification> _tokenCls;

    public GoldenData()
    {
        TorchNativeLoader.EnsureLoaded();
        _cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "cases.json")));
        _expected = SafetensorsFile.Open(Path.Combine(Root, "expected.safetensors"));
        _lm = new(() => Gpt2LMHeadModel.FromPretrained(ModelDir("lm")));
        _lmOriginalLayout = new(() => Gpt2LMHeadModel.FromPretrained(ModelDir("lm_original_layout")));
        _seqCls = new(() => Gpt2ForSequenceClassification.FromPretrained(ModelDir("seq_cls")));
        _tokenCls = new(() => Gpt2ForTokenClassification.FromPretrained(ModelDir("token_cls")));
    }

    public static string ModelDir(string name) => Path.Combine(Root, "models", name);

    public Gpt2LMHeadModel Lm(string layout = "lm") => layout == "lm" ? _lm.Value : _lmOriginalLayout.Value;
    public Gpt2ForSequenceClassification SeqCls => _seqCls.Value;
    public Gpt2ForTokenClassification TokenCls => _tokenCls.Value;

    public JsonElement Case(string id) =>
        _cases.RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);

    public IEnumerable<JsonElement> CasesOfKind(string kind) =>
        _cases.RootElement.GetProperty("cases").EnumerateArray().Where(c => c.GetProperty("kind").GetString() == kind);

    public Tensor Expected(string name) => _expected.ReadTensor(name, ScalarType.Float32, torch.CPU);

    public void Dispose()
    {
        _expected.Dispose();
        _cases.Dispose();
        if (_lm.IsValueCreated) _lm.Value.Dispose();
        if (_lmOriginalLayout.IsValueCreated) _lmOriginalLayout.Value.Dispose();
        if (_seqCls.IsValueCreated) _seqCls.Value.Dispose();
        if (_tokenCls.IsValueCreated) _tokenCls.Value.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class GoldenCollection : ICollectionFixture<GoldenData>
{
    public const string Name = "golden";
}
