using Spectre.Console;

namespace Gpt2Orleans.Cli;

/// <summary>
/// The consoles the commands write tables (stdout) and progress bars (stderr) to. Spectre.Console takes 80 columns
/// when its output is not a terminal, which folds a wide table (bench-engine's) into unreadable columns in a log or a
/// pipe: there it uses $COLUMNS when set, else <see cref="RedirectedWidth"/>, so rows stay whole.
/// </summary>
public static class CliConsole
{
    public const int RedirectedWidth = 240;

    /// <summary>A console over <paramref name="writer"/> (Console.Out or Console.Error), sized as above when redirected.</summary>
    public static IAnsiConsole Create(TextWriter writer, bool redirected)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        if (redirected) console.Profile.Width = Width(Environment.GetEnvironmentVariable("COLUMNS"));
        return console;
    }

    /// <summary>$COLUMNS when it is a sensible width, else <see cref="RedirectedWidth"/>.</summary>
    public static int Width(string? columns) => int.TryParse(columns, out int n) && n is >= 40 and <= 10_000 ? n : RedirectedWidth;

    /// <summary>stderr, for progress bars and notes that must not mix with a command's output.</summary>
    public static IAnsiConsole Error => Create(Console.Error, Console.IsErrorRedirected);

    /// <summary>Makes AnsiConsole's static methods (tables on stdout) use the sized console.</summary>
    public static void Install() => AnsiConsole.Console = Create(Console.Out, Console.IsOutputRedirected);
}
