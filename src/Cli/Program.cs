using System.CommandLine;
using Gpt2Orleans.Cli;
using Gpt2Orleans.Inference.Checkpoints;

CliConsole.Install();
var root = new RootCommand("gpt2o: GPT-2 text generation, scoring and classification on TorchSharp");
root.Add(GenerateCommand.Create());
root.Add(ScoreCommand.Create());
root.Add(EvalCommand.Create());
root.Add(TrainCommand.Create());
root.Add(QuantizeCommand.Create());
root.Add(PrepareFortunesCommand.Create());
root.Add(ClassifyCommand.CreateSequence());
root.Add(ClassifyCommand.CreateTokens());
root.Add(BenchCommand.Create());
root.Add(EngineBenchCommand.Create());
root.Add(BenchTrainCommand.Create());
root.Add(GatewayBenchCommand.Create());
root.Add(LifecycleBenchCommand.Create());

try
{
    return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is ArgumentException or CheckpointException or HttpRequestException or IOException or InvalidOperationException)
{
    // A clear one-line error for bad input, never a stack trace.
    string message = e is ArgumentException { ParamName: { } name } ? e.Message.Replace($" (Parameter '{name}')", "") : e.Message;
    Console.Error.WriteLine($"error: {message}");
    return 2;
}
