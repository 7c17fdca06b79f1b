namespace Gpt2Orleans.Inference.Quantization;

/// <summary>
/// The instruction sets <see cref="QuantizedMatVec"/>'s integer kernel is written for; each computes the same exact
/// integer sums (<see cref="QuantizedMatVec.Reference"/>), only the float accumulation order differs.
/// </summary>
internal enum IntegerKernel
{
    /// <summary>AVX2 + FMA: <c>vpmaddubsw</c> + <c>vpmaddwd</c> per block and row (the fallback on every x86-64 CPU since 2013).</summary>
    Avx2,
    /// <summary>AVX2 with <c>vpdpbusd</c> (AVX-VNNI): a block's 32 byte products summed into int32 in one instruction.</summary>
    AvxVnni,
    /// <summary>
    /// int4 only, AVX-512BW: one 512-bit load is a block of all four rows of a tile, unpacked and multiplied at once
    /// (.NET 10 has no 512-bit <c>vpdpbusd</c>, so int8 takes <see cref="AvxVnni"/>'s 256-bit one).
    /// </summary>
    Avx512,
}
