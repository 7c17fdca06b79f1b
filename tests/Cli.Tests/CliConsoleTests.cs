using Spectre.Console;

namespace Gpt2Orleans.Cli.Tests;

/// <summary>Tables written to a pipe or a log keep each row on one line (Spectre.Console alone folds them at 80 columns).</summary>
public sealed class CliConsoleTests
{
    [Fact]
    public void A_wide_table_keeps_its_rows_whole_when_the_output_is_not_a_terminal()
    {
        var writer = new StringWriter();
        var console = CliConsole.Create(writer, redirected: true);
        var table = new Table();
        foreach (var column in new[] { "streams", "output tok/s", "× 1 stream", "of compute bound", "all tok/s", "TTFT p50 / p99", "inter-token p50 / p99", "decode tok/s per stream", "KV unusable" })
            table.AddColumn(column);
        for (int row = 0; row < 3; row++) table.AddRow("32", "327.4", "8.7×", "24 %", "411.2", "0.51 / 0.62 s", "95.1 / 110.4 ms", "10.5 (80 % of bound)", "3.1 %");
        console.Write(table);
        var lines = writer.ToString().TrimEnd().Split('\n');
        Assert.Equal(3 + 4, lines.Length); // the rows, the header, and three borders: nothing folded
        Assert.Contains("decode tok/s per stream", lines[1]);
        Assert.All(lines, l => Assert.True(l.TrimEnd('\r').Length <= CliConsole.RedirectedWidth));
    }

    [Theory]
    [InlineData("120", 120)]
    [InlineData(null, CliConsole.RedirectedWidth)]
    [InlineData("abc", CliConsole.RedirectedWidth)]
    [InlineData("3", CliConsole.RedirectedWidth)]
    public void The_width_is_columns_when_sensible(string? columns, int expected) => Assert.Equal(expected, CliConsole.Width(columns));
}
