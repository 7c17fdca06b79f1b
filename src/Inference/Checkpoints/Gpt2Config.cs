using System.Text.Json;
using System.Text.Json.Nodes;

using Gpt2Orleans.Inference.Model;
using Gpt2Orleans.Inference.Quantization;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>
/// Hugging Face's <c>GPT2Config</c>, read from <c>config.json</c> with HF's defaults for absent fields.
/// Field names are HF's, so a reader of <c>configuration_gpt2.py</c> finds them. <see cref="Validate"/> rejects
/// what this implementation cannot honour, naming the field.
/// </summary>
public sealed record Gpt2Config
{
    public string ModelType { get; init; } = "gpt2";
    public int VocabSize { get; init; } = 50257;
    public int NPositions { get; init; } = 1024;
    public int NEmbd { get; init; } = 768;
    public int NLayer { get; init; } = 12;
    public int NHead { get; init; } = 12;
    public int? NInner { get; init; }
    public string ActivationFunction { get; init; } = "gelu_new";
    public double ResidPdrop { get; init; } = 0.1;
    public double EmbdPdrop { get; init; } = 0.1;
    public double AttnPdrop { get; init; } = 0.1;
    public double LayerNormEpsilon { get; init; } = 1e-5;
    public double InitializerRange { get; init; } = 0.02;
    public string SummaryType { get; init; } = "cls_index";
    public bool SummaryUseProj { get; init; } = true;
    public string? SummaryActivation { get; init; }
    public bool SummaryProjToLabels { get; init; } = true;
    public double SummaryFirstDropout { get; init; } = 0.1;
    public double? SummaryLastDropout { get; init; }
    public bool ScaleAttnWeights { get; init; } = true;
    public bool UseCache { get; init; } = true;
    public bool ScaleAttnByInverseLayerIdx { get; init; }
    public bool ReorderAndUpcastAttn { get; init; }
    public bool AddCrossAttention { get; init; }
    public bool TieWordEmbeddings { get; init; } = true;
    public int? BosTokenId { get; init; } = 50256;
    public IReadOnlyList<int> EosTokenIds { get; init; } = [50256];
    public int? PadTokenId { get; init; }
    public IReadOnlyDictionary<int, string> Id2Label { get; init; } = DefaultLabels(2);
    public string? ProblemType { get; init; }
    public double? ClassifierDropout { get; init; }
    public IReadOnlyList<string> Architectures { get; init; } = [];
    public string? TorchDtype { get; init; }
    /// <summary>config.json's <c>quantization_config</c>: the weights in the checkpoint are quantized so.</summary>
    public QuantizationConfig? Quantization { get; init; }

    public int NumLabels => Id2Label.Count;
    public int HeadDim => NEmbd / NHead;
    public int InnerDim => NInner ?? 4 * NEmbd;

    /// <summary>GPT-2 small (124M), HF's defaults: what <c>GPT2Config()</c> gives.</summary>
    public static Gpt2Config Default { get; } = new();

    public static Gpt2Config FromFile(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (IOException e) { throw new CheckpointException($"{path}: cannot read config: {e.Message}", e); }
        return FromJson(text, path);
    }

    /// <summary>
    /// HF's <c>config_overrides</c> (<c>n_layer=4,n_embd=256,resid_pdrop=0.0</c>): key=value pairs of GPT2Config on its
    /// defaults, for training from scratch. Values are JSON scalars (a bare word is a string); an unknown key is an error.
    /// </summary>
    public static Gpt2Config FromOverrides(string overrides)
    {
        var known = JsonNode.Parse(Default.ToJson())!.AsObject().Select(p => p.Key)
            .Concat(["num_labels", "max_position_embeddings", "hidden_size", "num_hidden_layers", "num_attention_heads", "classifier_dropout", "summary_last_dropout", "problem_type"]).ToHashSet();
        var json = new JsonObject();
        foreach (var pair in overrides.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int equals = pair.IndexOf('=');
            if (equals <= 0) throw new ArgumentException($"config override '{pair}' is not key=value", "config");
            string key = pair[..equals].Trim(), value = pair[(equals + 1)..].Trim();
            if (!known.Contains(key)) throw new ArgumentException($"config override '{key}' is not a GPT2Config field (e.g. n_layer, n_embd, n_head, n_positions, n_inner, activation_function, resid_pdrop)", "config");
            JsonNode? node;
            try { node = JsonNode.Parse(value); }
            catch (JsonException) { node = JsonValue.Create(value); }
            json[key] = node;
        }
        try { return FromJson(json.ToJsonString(), "--config"); }
        catch (CheckpointException e) { throw new ArgumentException(e.Message, "config"); }
    }

    public static Gpt2Config FromJson(string json, string source = "config.json")
    {
        var reader = JsonFieldReader.Parse(json, source);
        int numLabelsFallback = reader.Int("num_labels") ?? 2;
        var config = new Gpt2Config
        {
            ModelType = reader.String("model_type") ?? "gpt2",
            VocabSize = reader.Int("vocab_size") ?? 50257,
            NPositions = reader.Int("n_positions") ?? reader.Int("max_position_embeddings") ?? 1024,
            NEmbd = reader.Int("n_embd") ?? reader.Int("hidden_size") ?? 768,
            NLayer = reader.Int("n_layer") ?? reader.Int("num_hidden_layers") ?? 12,
            NHead = reader.Int("n_head") ?? reader.Int("num_attention_heads") ?? 12,
            NInner = reader.Int("n_inner"),
            ActivationFunction = reader.String("activation_function") ?? "gelu_new",
            ResidPdrop = reader.Double("resid_pdrop") ?? 0.1,
            EmbdPdrop = reader.Double("embd_pdrop") ?? 0.1,
            AttnPdrop = reader.Double("attn_pdrop") ?? 0.1,
            LayerNormEpsilon = reader.Double("layer_norm_epsilon") ?? 1e-5,
            InitializerRange = reader.Double("initializer_range") ?? 0.02,
            SummaryType = reader.String("summary_type") ?? "cls_index",
            SummaryUseProj = reader.Bool("summary_use_proj") ?? true,
            SummaryActivation = reader.String("summary_activation"),
            SummaryProjToLabels = reader.Bool("summary_proj_to_labels") ?? true,
            SummaryFirstDropout = reader.Double("summary_first_dropout") ?? 0.1,
            SummaryLastDropout = reader.Double("summary_last_dropout"),
            ScaleAttnWeights = reader.Bool("scale_attn_weights") ?? true,
            UseCache = reader.Bool("use_cache") ?? true,
            ScaleAttnByInverseLayerIdx = reader.Bool("scale_attn_by_inverse_layer_idx") ?? false,
            ReorderAndUpcastAttn = reader.Bool("reorder_and_upcast_attn") ?? false,
            AddCrossAttention = reader.Bool("add_cross_attention") ?? false,
            TieWordEmbeddings = reader.Bool("tie_word_embeddings") ?? true,
            BosTokenId = reader.Has("bos_token_id") ? reader.Int("bos_token_id") : 50256,
            EosTokenIds = reader.Has("eos_token_id") ? reader.IntOrList("eos_token_id") : [50256],
            PadTokenId = reader.Int("pad_token_id"),
            Id2Label = reader.Labels("id2label") ?? DefaultLabels(numLabelsFallback),
            ProblemType = reader.String("problem_type"),
            ClassifierDropout = reader.Double("classifier_dropout"),
            Architectures = reader.StringList("architectures"),
            TorchDtype = reader.String("torch_dtype"),
            Quantization = QuantizationConfig.FromJson(reader.Object("quantization_config"), source),
        };
        config.Validate(source);
        return config;
    }

    /// <summary>Rejects what this implementation cannot honour, or what would make the model meaningless.</summary>
    public void Validate(string source = "config")
    {
        void Require(bool ok, string field, string message)
        {
            if (!ok) throw new CheckpointException($"{source}: {field}: {message}");
        }
        Require(ModelType == "gpt2", "model_type", $"'{ModelType}' is not a GPT-2 model; only 'gpt2' is supported");
        Require(VocabSize is > 0 and <= 4_000_000, "vocab_size", $"{VocabSize} is out of range (1..4,000,000)");
        Require(NPositions is > 0 and <= 1_048_576, "n_positions", $"{NPositions} is out of range (1..1,048,576)");
        Require(NEmbd is > 0 and <= 65_536, "n_embd", $"{NEmbd} is out of range (1..65,536)");
        Require(NLayer is > 0 and <= 1_024, "n_layer", $"{NLayer} is out of range (1..1,024)");
        Require(NHead > 0 && NEmbd % NHead == 0, "n_head", $"{NHead} must be positive and divide n_embd ({NEmbd})");
        Require(NInner is null or (> 0 and <= 1_048_576), "n_inner", $"{NInner} is out of range");
        Require(Activations.IsSupported(ActivationFunction), "activation_function",
            $"'{ActivationFunction}' is not supported (supported: {string.Join(", ", Activations.Names)})");
        Require(LayerNormEpsilon > 0 && double.IsFinite(LayerNormEpsilon), "layer_norm_epsilon", "must be a positive number");
        Require(!AddCrossAttention, "add_cross_attention", "cross-attention (GPT-2 as an encoder-decoder's decoder) is not supported");
        Require(SummaryType is "last" or "first" or "mean" or "cls_index", "summary_type",
            $"'{SummaryType}' is not supported (last, first, mean, cls_index; HF itself does not implement 'attn')");
        Require(SummaryActivation is null or "tanh" || Activations.IsSupported(SummaryActivation), "summary_activation",
            $"'{SummaryActivation}' is not supported");
        Require(NumLabels <= 100_000, "id2label", $"{NumLabels} labels is out of range");
        Require(ProblemType is null or "regression" or "single_label_classification" or "multi_label_classification",
            "problem_type", $"'{ProblemType}' is not one of regression, single_label_classification, multi_label_classification");
        foreach (var (field, id) in new[] { ("bos_token_id", BosTokenId), ("pad_token_id", PadTokenId) })
            Require(id is null || (id >= 0 && id < VocabSize), field, $"{id} is outside the vocabulary (0..{VocabSize - 1})");
        foreach (var id in EosTokenIds)
            Require(id >= 0 && id < VocabSize, "eos_token_id", $"{id} is outside the vocabulary (0..{VocabSize - 1})");
    }

    /// <summary>config.json as HF's <c>save_pretrained</c> writes it (the fields this implementation reads).</summary>
    public string ToJson()
    {
        var root = new JsonObject
        {
            ["model_type"] = ModelType, ["architectures"] = new JsonArray(Architectures.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
            ["vocab_size"] = VocabSize, ["n_positions"] = NPositions, ["n_embd"] = NEmbd, ["n_layer"] = NLayer, ["n_head"] = NHead,
            ["n_inner"] = NInner, ["activation_function"] = ActivationFunction, ["resid_pdrop"] = ResidPdrop, ["embd_pdrop"] = EmbdPdrop,
            ["attn_pdrop"] = AttnPdrop, ["layer_norm_epsilon"] = LayerNormEpsilon, ["initializer_range"] = InitializerRange,
            ["summary_type"] = SummaryType, ["summary_use_proj"] = SummaryUseProj, ["summary_activation"] = SummaryActivation,
            ["summary_proj_to_labels"] = SummaryProjToLabels, ["summary_first_dropout"] = SummaryFirstDropout,
            ["scale_attn_weights"] = ScaleAttnWeights, ["use_cache"] = UseCache,
            ["scale_attn_by_inverse_layer_idx"] = ScaleAttnByInverseLayerIdx, ["reorder_and_upcast_attn"] = ReorderAndUpcastAttn,
            ["tie_word_embeddings"] = TieWordEmbeddings, ["bos_token_id"] = BosTokenId,
            ["eos_token_id"] = EosTokenIdNode(),
            ["pad_token_id"] = PadTokenId,
            ["id2label"] = new JsonObject(Id2Label.Select(p => KeyValuePair.Create(p.Key.ToString(), (JsonNode?)p.Value))),
            ["label2id"] = new JsonObject(Id2Label.Select(p => KeyValuePair.Create(p.Value, (JsonNode?)p.Key))),
        };
        if (ProblemType is not null) root["problem_type"] = ProblemType;
        if (SummaryLastDropout is not null) root["summary_last_dropout"] = SummaryLastDropout;
        if (ClassifierDropout is not null) root["classifier_dropout"] = ClassifierDropout;
        if (TorchDtype is not null) root["torch_dtype"] = TorchDtype;
        if (Quantization is not null) root["quantization_config"] = Quantization.ToJson();
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// generation_config.json as HF's <c>save_pretrained</c> writes it for a model whose generation settings come
    /// from its config (<c>_from_model_config</c>): the bos, eos and pad ids.
    /// </summary>
    public string GenerationConfigJson()
    {
        var root = new JsonObject { ["_from_model_config"] = true, ["bos_token_id"] = BosTokenId, ["eos_token_id"] = EosTokenIdNode() };
        if (PadTokenId is { } pad) root["pad_token_id"] = pad;
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>eos_token_id as HF writes it: one id as a number, several as a list.</summary>
    private JsonNode EosTokenIdNode() =>
        EosTokenIds.Count == 1 ? JsonValue.Create(EosTokenIds[0]) : new JsonArray(EosTokenIds.Select(i => (JsonNode)JsonValue.Create(i)).ToArray());

    public static IReadOnlyDictionary<int, string> DefaultLabels(int count) =>
        Enumerable.Range(0, Math.Max(count, 0)).ToDictionary(i => i, i => $"LABEL_{i}");
}
