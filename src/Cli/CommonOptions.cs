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

    public static readonly Option<bool> Json = new("--json") { Description = "Machine-readable JSON output" };

    public static void AddTo(Command command)
    {
        command.Add(Model);
        command.Add(Device);
        command.Add(DType);
        command.Add(Json);
    }
}
