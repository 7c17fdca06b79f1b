using System.IO.Hashing;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// A <see cref="KvSnapshot"/> on disk: a magic line, a JSON header (the model's fingerprint, the tokens, shapes,
/// dtype, data length and the data's XxHash128, a checksum against corruption that costs ~10 ms on 64 MB) and the
/// raw data, written from and read into a tensor's memory directly. Reading checks all of it against what the
/// caller expects (same model, same tokens) and bounds every size by the file's own length, so a stale,
/// truncated, corrupted or hostile file is refused with a reason, never loaded.
/// </summary>
public static class KvSnapshotFile
{
    private static readonly byte[] Magic = "GPT2O-KV2\n"u8.ToArray();
    private const int MaxHeaderBytes = 16 << 20;

    private sealed record Header(string Model, int[] Tokens, int Computed, int Layers, int Heads, int HeadDim, string DType, long DataLength, string XxHash128);

    public static void Write(string path, KvSnapshot snapshot, string modelFingerprint)
    {
        var data = snapshot.Data.contiguous();
        try
        {
            var bytes = data.bytes;
            var header = JsonSerializer.SerializeToUtf8Bytes(new Header(modelFingerprint, snapshot.Tokens, snapshot.Computed, snapshot.Layers, snapshot.Heads,
                snapshot.HeadDim, snapshot.DType.ToString(), bytes.Length, Checksum(bytes)));
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            string temporary = path + ".tmp";
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
            {
                file.Write(Magic);
                file.Write(BitConverter.GetBytes(header.Length));
                file.Write(header);
                file.Write(bytes);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (!ReferenceEquals(data, snapshot.Data)) data.Dispose();
        }
    }

    /// <summary>The snapshot when the file is intact and matches; otherwise null and why.</summary>
    public static KvSnapshot? TryRead(string path, string modelFingerprint, IReadOnlyList<int> tokens, out string? reason)
    {
        reason = null;
        Tensor? data = null;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read);
            var magic = new byte[Magic.Length];
            file.ReadExactly(magic);
            if (!magic.AsSpan().SequenceEqual(Magic)) return Refuse("not a KV snapshot file", out reason);
            var lengthBytes = new byte[4];
            file.ReadExactly(lengthBytes);
            int headerLength = BitConverter.ToInt32(lengthBytes);
            if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > file.Length - file.Position)
                return Refuse($"header length {headerLength} is impossible", out reason);
            var headerBytes = new byte[headerLength];
            file.ReadExactly(headerBytes);
            var header = JsonSerializer.Deserialize<Header>(headerBytes);
            if (header is null) return Refuse("empty header", out reason);
            if (header.Model != modelFingerprint) return Refuse("it was written by another model", out reason);
            if (header.Tokens is null || !header.Tokens.SequenceEqual(tokens)) return Refuse("the conversation's tokens changed", out reason);
            if (!Enum.TryParse<ScalarType>(header.DType, out var dtype) || dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
                return Refuse($"dtype {header.DType} is not a KV dtype", out reason);
            if (header.Computed < 0 || header.Computed > header.Tokens.Length || header.Layers <= 0 || header.Heads <= 0 || header.HeadDim <= 0)
                return Refuse("its shapes are impossible", out reason);
            var shape = KvSnapshot.ShapeOf(header.Layers, header.Computed, header.Heads, header.HeadDim);
            long expected = shape.Aggregate(1L, (a, b) => a * b) * (dtype == ScalarType.Float32 ? 4 : 2);
            long available = file.Length - file.Position;
            if (header.DataLength != expected || header.DataLength != available)
                return Refuse($"it holds {available} data bytes, not the {expected} its shapes need", out reason);
            data = torch.empty(shape, dtype);
            file.ReadExactly(data.bytes);
            if (Checksum(data.bytes) != header.XxHash128) return Refuse("its checksum does not match", out reason);
            var snapshot = new KvSnapshot(header.Tokens, header.Computed, data);
            data = null;
            return snapshot;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException or ArgumentException or OverflowException)
        {
            return Refuse(e.Message, out reason);
        }
        finally
        {
            data?.Dispose();
        }
    }

    private static string Checksum(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(XxHash128.Hash(data));

    private static KvSnapshot? Refuse(string why, out string? reason)
    {
        reason = why;
        return null;
    }
}
