using System.CommandLine;

namespace Gpt2Orleans.Cli;

/// <summary>Options every subcommand takes: which model, on which device, in which precision, and the output format.</summary>
public static class CommonOptions
{
    public static readonly Option<string?> Model = new("--model")
    {
        Description = "A Hugging Face GPT-2 folder (config.json + model.safetensors), or a hub repo id such as 'gpt2' " +
                      "(downloaded once into ~/.cache/gpt2orleans/hub; HF_ENDPOINT selects a mirror). Default: a randomly initialised GPT-2 small.",
    };

    public static readonly Option<string> Device = new("--device")
    {
        Description = "cpu, cuda or cuda:N",
        DefaultValueFactory = _ => "cpu",
    };

    public static readonly Option<string> DType = new("--dtype")
    {
        Description = "Compute precision: float32, bfloat16 or float16",
        DefaultValueFactory = _ => "float32",
    };

    public static readonly Option<string?> Quantize = new("--quantize")
    {
        Description = "Quantize the attention and MLP projections and the LM head at load: int8, int4, nf4 or none " +
                      "(one scale per --group-size inputs; nf4: bitsandbytes' NormalFloat4 code book; a checkpoint written by `gpt2o quantize` loads as it is)",
    };

    public static readonly Option<int> GroupSize = new("--group-size")
    {
        Description = "Inputs sharing one quantization scale: a multiple of 32",
        DefaultValueFactory = _ => Inference.Quantization.QuantizationConfig.DefaultGroupSize,
    };

    public static readonly Option<string?> KvDType = new("--kv-dtype")
    {
        Description = "The KV cache's dtype: float32, bfloat16 or float16 (default: the compute dtype). bfloat16 under float32 " +
                      "compute halves the KV's memory and what attention reads per step",
    };

    public static readonly Option<bool> Json = new("--json") { Description = "Machine-readable JSON output" };

    public static void AddTo(Command command)
    {
        command.Add(Model);
        command.Add(Device);
        command.Add(DType);
        command.Add(Quantize);
        command.Add(GroupSize);
        command.Add(Json);
    }

    /// <summary>For the commands that run the engine: <see cref="KvDType"/>.</summary>
    public static void AddEngineTo(Command command) => command.Add(KvDType);

    /// <summary>--kv-dtype, or null for the model's dtype.</summary>
    public static TorchSharp.torch.ScalarType? KvDTypeOf(ParseResult parse) =>
        parse.GetValue(KvDType) is { } text ? Inference.Checkpoints.DeviceSpec.ParseDType(text, "--kv-dtype") : null;

    /// <summary>--quantize and --group-size as a quantization, or null for dense weights.</summary>
    public static Inference.Quantization.QuantizationConfig? Quantization(ParseResult parse) =>
        Inference.Quantization.QuantizationConfig.Parse(parse.GetValue(Quantize), parse.GetValue(GroupSize));
}
