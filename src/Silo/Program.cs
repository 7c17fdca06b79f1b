using Gpt2Orleans.Silo;

// gpt2o-silo: one Orleans silo serving the models named by --model NAME=SOURCE (default: random GPT-2 small),
// with the OpenAI-compatible gateway co-hosted on http://127.0.0.1:8080 (--urls to change).
try
{
    await using var app = SiloApp.Build(args);
    await app.RunAsync();
    return 0;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
