using System.Text;
using Gpt2Orleans.Inference.Data;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Tests.Data;

/// <summary>Training and evaluation files: what they read, how documents join, and the errors that name the problem.</summary>
public sealed class TextDocumentsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpt2o-docs-").FullName;

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Json_lines_give_one_document_per_line_and_a_txt_file_one_document()
    {
        Assert.Equal(["Hello there.", "Second\nline é"], TextDocuments.Read(Write("a.jsonl", "\uFEFF{\"text\": \"Hello there.\"}\n\n{\"text\": \"Second\\nline é\"}\n")));
        Assert.Equal(["All of it\n{\"text\": 1}\n"], TextDocuments.Read(Write("b.txt", "All of it\n{\"text\": 1}\n")));
    }

    [Fact]
    public void Documents_join_with_end_of_text_between_them()
    {
        var tokenizer = Gpt2Tokenizer.Default;
        var ids = TextDocuments.Join(["Hello", "", "world"], tokenizer);
        Assert.Equal([.. tokenizer.Encode("Hello"), tokenizer.EndOfTextId, .. tokenizer.Encode("world")], ids);
    }

    [Theory]
    [InlineData("bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n", "line 2")]
    [InlineData("bad2.jsonl", "{\"text\": \"ok\"}\nnot json\n", "line 2 is not JSON")]
    [InlineData("empty.jsonl", "\n\n", "holds no text")]
    [InlineData("empty.txt", "", "holds no text")]
    [InlineData("data.csv", "a,b\n", "neither JSON Lines")]
    public void Bad_files_are_refused_naming_the_file_and_the_problem(string name, string content, string named)
    {
        string path = Write(name, content);
        var error = Assert.Throws<ArgumentException>(() => TextDocuments.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void Invalid_utf8_and_a_missing_file_are_refused()
    {
        Assert.Contains("not valid UTF-8", Assert.Throws<ArgumentException>(() => TextDocuments.Read(Write("latin1.txt", [0x63, 0x61, 0x66, 0xE9]))).Message);
        Assert.Contains("does not exist", Assert.Throws<ArgumentException>(() => TextDocuments.Read(Path.Combine(_dir, "none.jsonl"))).Message);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
