using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>Writes tensors as a <c>.safetensors</c> file (as HF's <c>save_file</c>: names sorted, header padded to 8 bytes).</summary>
public static class SafetensorsWriter
{
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>();
        if (metadata is not null) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, tensor) in ordered)
        {
            long size = tensor.numel() * tensor.ElementSize;
            header[name] = new { dtype = DType(tensor.dtype), shape = tensor.shape, data_offsets = new[] { offset, offset + size } };
            offset += size;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> length = stackalloc byte[8];
        BitConverter.TryWriteBytes(length, (ulong)padded);
        file.Write(length);
        file.Write(json);
        for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
        foreach (var (_, tensor) in ordered)
        {
            using var cpu = tensor.detach().cpu().contiguous();
            file.Write(cpu.bytes);
        }
    }

    private static string DType(ScalarType type) => type switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Float64 => "F64",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Bool => "BOOL",
        ScalarType.Byte => "U8",
        ScalarType.Int8 => "I8",
        _ => throw new ArgumentException($"dtype {type} has no safetensors name"),
    };
}
