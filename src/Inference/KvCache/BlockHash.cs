using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// The content address of a full KV block: a hash of the salt (model and tenant), the previous block's hash and
/// this block's token ids, so it identifies the whole prefix up to and including the block (vLLM's block hash with
/// <c>cache_salt</c>). SHA-256, truncated to 128 bits: a collision would silently serve wrong KV, so no weak hash.
/// </summary>
public readonly record struct BlockHash(UInt128 Value)
{
    public static BlockHash Of(BlockHash? parent, ReadOnlySpan<int> tokens, string salt)
    {
        var saltBytes = Encoding.UTF8.GetBytes(salt);
        var buffer = new byte[4 + saltBytes.Length + 16 + 4 * tokens.Length];
        BinaryPrimitives.WriteInt32LittleEndian(buffer, saltBytes.Length);
        saltBytes.CopyTo(buffer, 4);
        int at = 4 + saltBytes.Length;
        if (parent is { } p) BinaryPrimitives.WriteUInt128LittleEndian(buffer.AsSpan(at), p.Value);
        at += 16;
        foreach (var token in tokens)
        {
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(at), token);
            at += 4;
        }
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(buffer, digest);
        return new BlockHash(BinaryPrimitives.ReadUInt128LittleEndian(digest));
    }
}
