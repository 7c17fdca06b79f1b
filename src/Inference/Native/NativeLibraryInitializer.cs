using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Gpt2Orleans.Inference.Native;

/// <summary>
/// Runs the native-library fix when this assembly is first used, so no caller can reach TorchSharp through our
/// types before it (TorchSharp's own static constructor would load the unpatched library and fail for good).
/// </summary>
internal static class NativeLibraryInitializer
{
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "The fix must precede TorchSharp's first use, whoever the caller is.")]
    internal static void Initialize() => TorchNativeLoader.EnsureLoaded();
}
