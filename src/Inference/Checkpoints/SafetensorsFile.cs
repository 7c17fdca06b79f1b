using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Checkpoints;

/// <summary>
/// A memory-mapped <c>.safetensors</c> file (8-byte little-endian header length, JSON header, raw data).
/// Why our own reader: TorchSharp has none for HF's format, and we want strict validation of hostile files:
/// every offset, size and dtype is checked before any byte is read, and errors name the file and tensor.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>The safetensors specification caps the header at 100 MB.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public sealed record TensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
    {
        public long ByteCount => End - Begin;
    }

    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsFile(string path, MemoryMappedFile? file, MemoryMappedViewAccessor? view, long dataStart,
        IReadOnlyDictionary<string, TensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path; _file = file; _view = view; _dataStart = dataStart; Tensors = tensors; Metadata = metadata;
    }

    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw Fail(path, "file not found");
        long length;
        try { length = new FileInfo(path).Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Fail(path, $"cannot open: {e.Message}"); }
        if (length < 8) throw Fail(path, $"file is {length} bytes, too short for a safetensors header");

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(length - 8))
            throw Fail(path, $"header length {headerLength} runs past the end of the file ({length} bytes)");
        if (headerLength > MaxHeaderBytes)
            throw Fail(path, $"header length {headerLength} exceeds the format's limit of {MaxHeaderBytes} bytes");

        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataStart = 8 + (long)headerLength;
        long dataLength = length - dataStart;
        var (tensors, metadata) = ParseHeader(path, header, dataLength);

        if (dataLength == 0) return new SafetensorsFile(path, null, null, dataStart, tensors, metadata);
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        return new SafetensorsFile(path, file, view, dataStart, tensors, metadata);
    }

    private static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw Fail(path, $"header is not valid JSON: {e.Message}"); }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw Fail(path, "header must be a JSON object");
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object) throw Fail(path, "__metadata__ must be an object of strings");
                    foreach (var m in property.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw Fail(path, $"__metadata__.{m.Name} must be a string");
                    continue;
                }
                if (tensors.ContainsKey(property.Name)) throw Fail(path, $"tensor '{property.Name}' appears twice");
                tensors[property.Name] = ParseTensor(path, property.Name, property.Value, dataLength);
            }

            var ordered = tensors.Values.Where(t => t.ByteCount > 0).OrderBy(t => t.Begin).ToList();
            for (int i = 1; i < ordered.Count; i++)
                if (ordered[i].Begin < ordered[i - 1].End)
                    throw Fail(path, $"tensors '{ordered[i - 1].Name}' and '{ordered[i].Name}' overlap");
            return (tensors, metadata);
        }
    }

    private static TensorInfo ParseTensor(string path, string name, JsonElement entry, long dataLength)
    {
        CheckpointException Bad(string message) => Fail(path, $"tensor '{name}': {message}");
        if (entry.ValueKind != JsonValueKind.Object) throw Bad("entry must be an object");
        if (!entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad("missing dtype");
        string dtype = dtypeElement.GetString()!;
        long elementSize = ElementSize(dtype) ?? throw Bad($"unknown dtype '{dtype}'");

        if (!entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Bad("missing shape");
        var shape = new List<long>();
        long elements = 1;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var d) || d < 0) throw Bad("shape must hold non-negative integers");
            shape.Add(d);
            try { elements = checked(elements * d); } catch (OverflowException) { throw Bad("shape is too large"); }
        }
        if (shape.Count > 8) throw Bad($"{shape.Count} dimensions is too many");

        if (!entry.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end))
            throw Bad("data_offsets must be [begin, end]");
        if (begin < 0 || end < begin || end > dataLength)
            throw Bad($"data_offsets [{begin}, {end}] are out of range (data section is {dataLength} bytes)");
        long expected;
        try { expected = checked(elements * elementSize); } catch (OverflowException) { throw Bad("shape is too large"); }
        if (end - begin != expected)
            throw Bad($"holds {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}");
        return new TensorInfo(name, dtype, shape.ToArray(), begin, end);
    }

    private static long? ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => null,
    };

    private static ScalarType? TorchType(string dtype) => dtype switch
    {
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "F64" => ScalarType.Float64,
        _ => null,
    };

    /// <summary>Reads a floating-point tensor and converts it to <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public Tensor ReadTensor(string name, ScalarType dtype, Device device)
    {
        if (!Tensors.TryGetValue(name, out var info)) throw Fail(Path, $"tensor '{name}' not found");
        var source = TorchType(info.DType)
            ?? throw Fail(Path, $"tensor '{name}': dtype {info.DType} is not a floating-point weight type (F32, F16, BF16, F64)");
        if (info.ByteCount > int.MaxValue) throw Fail(Path, $"tensor '{name}': {info.ByteCount} bytes exceeds the 2 GiB per-tensor limit");

        var cpu = torch.empty(info.Shape, source);
        if (info.ByteCount > 0) CopyBytes(info, cpu.bytes);
        if (source == dtype && device.type == DeviceType.CPU) return cpu;
        using (cpu) return cpu.to(dtype, device);
    }

    /// <summary>Whether every value of the tensor is finite, checked in the file itself (one pass, no copy).</summary>
    public unsafe bool AllFinite(string name)
    {
        if (!Tensors.TryGetValue(name, out var info)) throw Fail(Path, $"tensor '{name}' not found");
        if (info.ByteCount == 0) return true;
        byte* pointer = null;
        var handle = _view!.SafeMemoryMappedViewHandle;
        handle.AcquirePointer(ref pointer);
        try { return FiniteValues.All(new ReadOnlySpan<byte>(pointer + _view.PointerOffset + _dataStart + info.Begin, (int)info.ByteCount), info.DType); }
        finally { handle.ReleasePointer(); }
    }

    /// <summary>A tensor's raw bytes into <paramref name="destination"/>, which must be exactly its size (quantized levels and scales).</summary>
    public void ReadBytes(string name, Span<byte> destination)
    {
        if (!Tensors.TryGetValue(name, out var info)) throw Fail(Path, $"tensor '{name}' not found");
        if (info.ByteCount != destination.Length) throw Fail(Path, $"tensor '{name}' holds {info.ByteCount} bytes, {destination.Length} expected");
        if (info.ByteCount > 0) CopyBytes(info, destination);
    }

    private unsafe void CopyBytes(TensorInfo info, Span<byte> destination)
    {
        byte* pointer = null;
        var handle = _view!.SafeMemoryMappedViewHandle;
        handle.AcquirePointer(ref pointer);
        try
        {
            new ReadOnlySpan<byte>(pointer + _view.PointerOffset + _dataStart + info.Begin, (int)info.ByteCount).CopyTo(destination);
        }
        finally { handle.ReleasePointer(); }
    }

    private static CheckpointException Fail(string path, string message) => new($"{path}: {message}");

    public void Dispose()
    {
        _view?.Dispose();
        _file?.Dispose();
    }
}
