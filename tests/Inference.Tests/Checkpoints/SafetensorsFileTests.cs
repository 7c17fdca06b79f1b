using System.Buffers.Binary;
using System.Text;
using Gpt2Orleans.Inference.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Checkpoints;

/// <summary>Hostile or broken files are a clear error naming the file and tensor: never a crash, hang or huge allocation.</summary>
public sealed class SafetensorsFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpt2o-st-").FullName;

    public SafetensorsFileTests() => Native.TorchNativeLoader.EnsureLoaded();

    private string Write(string header, int dataBytes = 0, ulong? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        string path = Path.Combine(_dir, Guid.NewGuid() + ".safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string Error(string path) => Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path).Dispose()).Message;

    [Fact]
    public void Round_trips_f32_f16_and_bf16_converting_to_the_compute_dtype()
    {
        using var scope = torch.NewDisposeScope();
        var original = torch.randn(3, 5);
        string path = Path.Combine(_dir, "ok.safetensors");
        SafetensorsWriter.Save(path, new Dictionary<string, Tensor>
        {
            ["a.f32"] = original, ["a.f16"] = original.to(ScalarType.Float16), ["a.bf16"] = original.to(ScalarType.BFloat16),
        });
        using var file = SafetensorsFile.Open(path);
        Assert.True(file.ReadTensor("a.f32", ScalarType.Float32, torch.CPU).eq(original).all().item<bool>());
        Assert.True(file.ReadTensor("a.f16", ScalarType.Float32, torch.CPU).allclose(original, rtol: 1e-2, atol: 1e-2));
        var bf16 = file.ReadTensor("a.bf16", ScalarType.BFloat16, torch.CPU);
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        Assert.True(bf16.eq(original.to(ScalarType.BFloat16)).all().item<bool>());
    }

    [Fact]
    public void Header_length_past_the_end_of_the_file_is_rejected_before_allocating()
    {
        Assert.Contains("runs past the end", Error(Write("{}", declaredLength: ulong.MaxValue / 2)));
        Assert.Contains("runs past the end", Error(Write("{}", declaredLength: 1_000_000)));
    }

    [Fact]
    public void Truncated_and_empty_files_are_rejected()
    {
        string tiny = Path.Combine(_dir, "tiny.safetensors");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Assert.Contains("too short", Error(tiny));
        Assert.Contains("not found", Error(Path.Combine(_dir, "missing.safetensors")));
    }

    [Theory]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("[1,2]", "must be a JSON object")]
    [InlineData("{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", "unknown dtype 'Q7'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "needs 8")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,400]}}", "out of range")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", "out of range")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "non-negative")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", "too large")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", "data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "overlap")]
    public void Invalid_headers_name_the_problem_and_the_tensor(string header, string expected)
    {
        string path = Write(header, dataBytes: 16);
        string message = Error(path);
        Assert.Contains(expected, message);
        Assert.Contains(path, message);
    }

    [Fact]
    public void Reading_an_integer_tensor_as_weights_is_a_clear_error()
    {
        string path = Write("{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", dataBytes: 8);
        using var file = SafetensorsFile.Open(path);
        var error = Assert.Throws<CheckpointException>(() => file.ReadTensor("ids", ScalarType.Float32, torch.CPU));
        Assert.Contains("'ids'", error.Message);
        Assert.Contains("not a floating-point", error.Message);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
