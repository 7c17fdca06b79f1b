using Gpt2Orleans.Tests.Shared;

namespace Gpt2Orleans.Gateway.Tests.Support;

/// <summary>Where the real clients and browsers the tests start live: tests/tools (npm, installed by ./test.sh) and Debian's /usr/bin.</summary>
public static class ToolPaths
{
    public static string Chromium => Repository.Require("/usr/bin/chromium", "run ./test.sh (it installs Debian's chromium)");

    public static string OpenAiClient => Repository.Require(Path.Combine(Repository.Tools, "node_modules", "openai", "package.json"), "run ./test.sh (it runs npm ci in tests/tools)");
}
