using System.Text.Json;
using Gpt2Orleans.Inference.Tokenization;
using static TorchSharp.torch;

namespace Gpt2Orleans.Inference.Tests.Support;

/// <summary>Reading ids and masks out of golden cases.</summary>
public static class GoldenJson
{
    public static long[][]? Matrix(JsonElement element) => element.ValueKind == JsonValueKind.Null ? null
        : element.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();

    public static int[] Ints(JsonElement element) => element.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    public static Tensor? Tensor(JsonElement element) => Matrix(element) is { } rows ? BatchEncoding.ToTensor(rows) : null;

    public static Tensor? Input(JsonElement testCase, string name) =>
        testCase.GetProperty("inputs").TryGetProperty(name, out var e) ? Tensor(e) : null;

    public static string[] Names(JsonElement element) => element.EnumerateArray().Select(v => v.GetString()!).ToArray();
}
