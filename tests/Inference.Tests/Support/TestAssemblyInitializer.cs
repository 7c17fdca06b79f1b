using System.Runtime.CompilerServices;
using Gpt2Orleans.Inference.Native;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>Tests may call TorchSharp before touching any library type; prepare the native library first.</summary>
internal static class TestAssemblyInitializer
{
    [ModuleInitializer]
    internal static void Initialize() => TorchNativeLoader.EnsureLoaded();
}
