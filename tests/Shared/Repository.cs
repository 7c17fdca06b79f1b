namespace Gpt2Orleans.Tests.Shared;

/// <summary>The repository the tests run from (found by Gpt2Orleans.sln above the test binaries), and tools the tests need in it. Linked into each test project that starts real tools.</summary>
public static class Repository
{
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Gpt2Orleans.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Gpt2Orleans.sln) above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>tests/tools: the npm packages ./test.sh installs.</summary>
    public static string Tools => Path.Combine(Root, "tests", "tools");

    public static string Require(string path, string installHint) =>
        File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: {installHint}");
}
