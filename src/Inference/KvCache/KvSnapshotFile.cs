using System.Security.Cryptography;
using System.Text.Json;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.KvCache;

/// <summary>
/// A <see cref="KvSnapshot"/> on disk: a magic line, a JSON header (the model's fingerprint, the tokens, shapes,
/// dtype, data length and the data's SHA-256) and the raw data. Reading checks all of it against what the caller
/// expects (same model, same tokens) and bounds every size by the file's own length, so a stale, truncated,
/// corrupted or hostile file is refused with a reason, never loaded.
/// </summary>
public static class KvSnapshotFile
{
    private static readonly byte[] Magic = "GPT2O-KV1\n"u8.ToArray();
    private const int MaxHeaderBytes = 16 << 20;

    private sealed record Header(string Model, int[] Tokens, int Computed, int Layers, int Heads, int HeadDim, string DType, long DataLength, string Sha256);

    public static void Write(string path, KvSnapshot snapshot, string modelFingerprint)
    {
        var header = JsonSerializer.SerializeToUtf8Bytes(new Header(modelFingerprint, snapshot.Tokens, snapshot.Computed, snapshot.Layers, snapshot.Heads,
            snapshot.HeadDim, snapshot.DType.ToString(), snapshot.Data.LongLength, Convert.ToHexStringLower(SHA256.HashData(snapshot.Data))));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            file.Write(Magic);
            file.Write(BitConverter.GetBytes(header.Length));
            file.Write(header);
            file.Write(snapshot.Data);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>The snapshot when the file is intact and matches; otherwise null and why.</summary>
    public static KvSnapshot? TryRead(string path, string modelFingerprint, IReadOnlyList<int> tokens, out string? reason)
    {
        reason = null;
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
            if (!Enum.TryParse<ScalarType>(header.DType, out var dtype)) return Refuse($"dtype {header.DType} is unknown", out reason);
            if (header.Computed < 0 || header.Computed > header.Tokens.Length || header.Layers <= 0 || header.Heads <= 0 || header.HeadDim <= 0)
                return Refuse("its shapes are impossible", out reason);
            var expected = new KvSnapshot(header.Tokens, header.Computed, header.Layers, header.Heads, header.HeadDim, dtype, []);
            if (header.DataLength != expected.ExpectedDataLength || header.DataLength != file.Length - file.Position)
                return Refuse($"it holds {file.Length - file.Position} data bytes, not the {expected.ExpectedDataLength} its shapes need", out reason);
            var data = new byte[header.DataLength];
            file.ReadExactly(data);
            if (Convert.ToHexStringLower(SHA256.HashData(data)) != header.Sha256) return Refuse("its checksum does not match", out reason);
            return expected with { Data = data };
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException or ArgumentException)
        {
            return Refuse(e.Message, out reason);
        }
    }

    private static KvSnapshot? Refuse(string why, out string? reason)
    {
        reason = why;
        return null;
    }
}
