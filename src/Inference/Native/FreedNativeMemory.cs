using System.Runtime.InteropServices;

namespace Gpt2Orleans.Inference.Native;

/// <summary>
/// Hands the memory native code has freed back to the operating system (glibc's <c>malloc_trim</c>; elsewhere nothing).
/// Why: glibc keeps freed heap pages for reuse, so quantizing at load, which frees every dense float32 weight, left
/// the process's resident set near float32's: GPT-2 small quantized to int4 measured 679 MB resident against float32's
/// 731, and 253 MB once trimmed.
/// </summary>
internal static unsafe class FreedNativeMemory
{
    private static readonly delegate* unmanaged<nuint, int> Trim = Find();

    public static void ReturnToSystem()
    {
        if (Trim != null) Trim(0);
    }

    private static delegate* unmanaged<nuint, int> Find() =>
        OperatingSystem.IsLinux() && NativeLibrary.TryLoad("libc.so.6", out var libc) && NativeLibrary.TryGetExport(libc, "malloc_trim", out var trim)
            ? (delegate* unmanaged<nuint, int>)trim
            : null;
}
