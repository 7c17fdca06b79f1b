using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Model;

/// <summary>
/// A contiguous CPU tensor's memory as our kernels read it: its first element, its dtype and its [rows, columns] (a
/// vector is one row), asked of libtorch once. Valid while the tensor lives and keeps its storage.
/// </summary>
internal readonly unsafe record struct TensorMemory(nint Address, ScalarType DType, int Rows, int Columns)
{
    public static TensorMemory Of(Tensor t)
    {
        int columns = (int)t.size(-1);
        return new(AddressOf(t), t.dtype, (int)(t.numel() / Math.Max(1, columns)), columns);
    }

    /// <summary>Where a contiguous CPU tensor's first element lies.</summary>
    public static nint AddressOf(Tensor t) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));

    public int Count => Rows * Columns;

    /// <summary>Row <paramref name="row"/> alone (float32 or bf16 elements).</summary>
    public TensorMemory Row(int row) => this with { Address = Address + (nint)row * Columns * (DType == ScalarType.Float32 ? 4 : 2), Rows = 1 };
}
