using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace Gpt2Orleans.Inference.Native;

/// <summary>
/// Loads TorchSharp's native library, working around hosts whose libstdc++ is older than the one it was
/// built against. libLibTorchSharp.so (0.102–0.107) requires GLIBCXX_3.4.32 (GCC 13) for a single symbol,
/// <c>std::ios_base_library_init()</c>, a dummy reference that GCC 13's &lt;iostream&gt; emits and nothing calls;
/// Debian 12 and Ubuntu 22.04 ship 3.4.30. Where the host lacks it we patch a private copy (never the NuGet
/// cache) so that requirement is weak, load that copy, and route TorchSharp's P/Invokes to it.
/// Call <see cref="EnsureLoaded"/> before the first TorchSharp call.
/// </summary>
public static class TorchNativeLoader
{
    private const string MissingVersion = "GLIBCXX_3.4.32";
    private const string MarkerSymbol = "_ZSt21ios_base_library_initv";
    private const string LibraryName = "LibTorchSharp";
    private const string LibraryFile = "libLibTorchSharp.so";

    private static readonly Lock Gate = new();
    private static bool _loaded;
    private static IntPtr _patchedHandle;

    /// <summary>Prepares the native library once per process. <paramref name="log"/> receives at most one line.</summary>
    public static void EnsureLoaded(Action<string>? log = null)
    {
        lock (Gate)
        {
            if (_loaded) return;
            if (OperatingSystem.IsLinux() && !HostProvidesRequiredVersion())
                LoadPatchedCopy(log ?? (line => Console.Error.WriteLine(line)));
            _loaded = true;
        }
    }

    private static bool HostProvidesRequiredVersion()
    {
        if (!NativeLibrary.TryLoad("libstdc++.so.6", out var handle)) return true;
        return NativeLibrary.TryGetExport(handle, MarkerSymbol, out _);
    }

    private static void LoadPatchedCopy(Action<string> log)
    {
        string original = FindOriginal();
        string nativeDir = Path.GetDirectoryName(original)!;
        byte[] bytes = File.ReadAllBytes(original);
        string hash = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        string patched = Path.Combine(CacheDirectory(), hash, LibraryFile);

        if (!File.Exists(patched))
        {
            var symbols = ElfVersionNeedPatcher.MakeVersionWeak(bytes, "libstdc++.so.6", MissingVersion);
            Directory.CreateDirectory(Path.GetDirectoryName(patched)!);
            string temporary = patched + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, patched, overwrite: true); // atomic: concurrent processes may race here
            log($"TorchSharp native fix: host libstdc++ lacks {MissingVersion}; patched a copy of {original} " +
                $"(weak requirement, {symbols.Count} symbol(s) unversioned: {string.Join(", ", symbols)}) to {patched}");
        }
        else
        {
            log($"TorchSharp native fix: host libstdc++ lacks {MissingVersion}; using the patched copy {patched}");
        }

        // The copy's RUNPATH ($ORIGIN) no longer points at libtorch, so load its dependencies first by path;
        // the loader then satisfies its DT_NEEDED entries by soname.
        foreach (var dependency in new[] { "libc10.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so" })
        {
            string path = Path.Combine(nativeDir, dependency);
            if (File.Exists(path)) NativeLibrary.Load(path);
            else if (dependency != "libtorch_cuda.so" && !NativeLibrary.TryLoad(dependency, typeof(torch).Assembly, null, out _))
                throw new DllNotFoundException($"TorchSharp native fix: cannot find {dependency} beside {original}");
        }
        _patchedHandle = NativeLibrary.Load(patched);
        NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name is LibraryName or LibraryFile ? _patchedHandle : IntPtr.Zero;

    /// <summary>The file the runtime would load: from the app's native search directories (deps.json).</summary>
    private static string FindOriginal()
    {
        var directories = ((AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string) ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append(AppContext.BaseDirectory)
            .Append(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"));
        foreach (var directory in directories)
        {
            string candidate = Path.Combine(directory, LibraryFile);
            if (File.Exists(candidate)) return Path.GetFullPath(candidate);
        }
        throw new DllNotFoundException($"TorchSharp native fix: {LibraryFile} not found in the app's native search directories");
    }

    private static string CacheDirectory()
    {
        string? configured = Environment.GetEnvironmentVariable("GPT2O_NATIVE_CACHE");
        if (!string.IsNullOrEmpty(configured)) return configured;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "gpt2orleans", "native");
    }
}
