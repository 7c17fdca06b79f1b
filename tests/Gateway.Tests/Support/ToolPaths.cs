namespace Gpt2Orleans.Gateway.Tests.Support;

/// <summary>Where the real clients and browsers the tests start live: tests/tools (npm, installed by ./test.sh) and Debian's /usr/bin.</summary>
public static class ToolPaths
{
    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Gpt2Orleans.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Gpt2Orleans.sln) above " + AppContext.BaseDirectory);
        }
    }

    public static string Tools => Path.Combine(RepositoryRoot, "tests", "tools");

    public static string Chromium => Require("/usr/bin/chromium", "run ./test.sh (it installs Debian's chromium)");

    public static string Require(string path, string installHint) =>
        File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: {installHint}");
}
