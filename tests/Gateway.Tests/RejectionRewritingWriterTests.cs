using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Gpt2Orleans.Gateway.Errors;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>The rewrite of Kestrel's bare rejections, on bytes: only a bodiless error head between requests changes.</summary>
public sealed class RejectionRewritingWriterTests
{
    private static ApiException Describe(int status) => new(status, $"status {status}", "invalid_request_error", null, "code" + status);

    private const string BareRejection = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\nDate: Tue, 01 Dec 2026 19:00:00 GMT\r\nServer: Kestrel\r\n\r\n";

    [Fact]
    public void A_bare_error_head_gets_the_error_object_and_its_length()
    {
        string rewritten = Encoding.UTF8.GetString(RejectionRewritingWriter.WithBody(Encoding.ASCII.GetBytes(BareRejection), Describe)!);
        var (head, body) = (rewritten[..(rewritten.IndexOf("\r\n\r\n") + 4)], rewritten[(rewritten.IndexOf("\r\n\r\n") + 4)..]);
        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", head);
        Assert.Contains($"\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n", head);
        Assert.Contains("\r\nContent-Type: application/json; charset=utf-8\r\n", head);
        Assert.Contains("\r\nConnection: close\r\n", head);
        Assert.Equal("code431", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")] // not an error
    [InlineData("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")] // has a body
    [InlineData("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n")] // says what it is
    [InlineData("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")] // more than a head
    [InlineData("0\r\n\r\n")] // a chunked body's end
    [InlineData("data: HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")]
    public void Anything_else_passes_through(string written) =>
        Assert.Null(RejectionRewritingWriter.WithBody(Encoding.ASCII.GetBytes(written), Describe));

    [Fact]
    public async Task Writes_while_a_request_is_in_the_app_go_straight_through_and_are_never_rewritten()
    {
        var pipe = new Pipe();
        var writer = new RejectionRewritingWriter(pipe.Writer, Describe);
        writer.RequestStarted();
        writer.Write(Encoding.ASCII.GetBytes(BareRejection));
        Assert.Equal(BareRejection.Length, writer.UnflushedBytes); // in the transport's own buffer already
        await writer.FlushAsync();
        writer.RequestEnded();
        writer.Write(Encoding.ASCII.GetBytes(BareRejection)); // between requests: Kestrel's own
        await writer.FlushAsync();
        await writer.CompleteAsync();
        var read = await pipe.Reader.ReadAtLeastAsync(BareRejection.Length * 2);
        string text = Encoding.UTF8.GetString(read.Buffer.ToArray());
        Assert.StartsWith(BareRejection + "HTTP/1.1 431", text);
        Assert.EndsWith("}}", text);
    }
}
