using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace Gpt2Orleans.Gateway.Errors;

/// <summary>
/// A connection's output that gives Kestrel's own rejections a body. Kestrel answers a request it cannot parse
/// (a malformed request line or header, a request line or headers over its limits, headers that arrive too late)
/// itself, before any middleware runs, with a bare <c>Content-Length: 0</c> response, and offers no hook to change it
/// (aspnet/KestrelHttpServer#2947). Such a response is written only between requests, when no request is in the app,
/// so what is written then is held until its flush, and a bodiless 4xx/5xx head gets OpenAI's error object; anything
/// else passes through unchanged. While a request is in the app, writes go straight to the transport.
/// </summary>
public sealed class RejectionRewritingWriter(PipeWriter inner, Func<int, ApiException> describe) : PipeWriter
{
    private readonly ArrayBufferWriter<byte> _held = new(256);
    private int _requestsInApp;
    private bool _lastSpanHeld;

    /// <summary>The app holds a request (counted: HTTP/2 runs several on one connection).</summary>
    public void RequestStarted() => Interlocked.Increment(ref _requestsInApp);

    /// <summary>The app has completed a request's response.</summary>
    public void RequestEnded() => Interlocked.Decrement(ref _requestsInApp);

    /// <summary>Kestrel writes a response head in one piece before it flushes, so holding starts and ends at flushes.</summary>
    private bool Holding => Volatile.Read(ref _requestsInApp) == 0 || _held.WrittenCount > 0;

    public override Memory<byte> GetMemory(int sizeHint = 0) =>
        (_lastSpanHeld = Holding) ? _held.GetMemory(sizeHint) : inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) =>
        (_lastSpanHeld = Holding) ? _held.GetSpan(sizeHint) : inner.GetSpan(sizeHint);

    public override void Advance(int bytes)
    {
        if (_lastSpanHeld) _held.Advance(bytes);
        else inner.Advance(bytes);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        Release();
        return inner.FlushAsync(cancellationToken);
    }

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    // Kestrel's response body writer asks (System.Text.Json flushes by it).
    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes + _held.WrittenCount;

    public override void Complete(Exception? exception = null)
    {
        Release();
        inner.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        Release();
        return inner.CompleteAsync(exception);
    }

    private void Release()
    {
        if (_held.WrittenCount == 0) return;
        inner.Write(WithBody(_held.WrittenSpan, describe) ?? _held.WrittenSpan);
        _held.Clear();
    }

    private static readonly byte[] EmptyBody = "\r\nContent-Length: 0\r\n"u8.ToArray();
    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    /// <summary>
    /// The bytes of a bare error response (<c>HTTP/1.x 4xx|5xx</c>, <c>Content-Length: 0</c>, no body, no content type)
    /// with the error object for its status as body; null for anything else.
    /// </summary>
    public static byte[]? WithBody(ReadOnlySpan<byte> written, Func<int, ApiException> describe)
    {
        if (written.Length < 16 || !(written.StartsWith("HTTP/1.1 "u8) || written.StartsWith("HTTP/1.0 "u8))) return null;
        if (!int.TryParse(Encoding.ASCII.GetString(written.Slice(9, 3)), out int status) || status is < 400 or > 599) return null;
        if (written.IndexOf(HeadEnd) != written.Length - HeadEnd.Length) return null; // a head alone, nothing after it
        int length = written.IndexOf(EmptyBody);
        if (length < 0 || written.IndexOf("\r\nContent-Type:"u8) >= 0) return null;
        byte[] body = ErrorHandling.ErrorBody(describe(status));
        var rewritten = new ArrayBufferWriter<byte>(written.Length + body.Length + 64);
        rewritten.Write(written[..length]);
        rewritten.Write(Encoding.ASCII.GetBytes($"\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {body.Length}\r\n"));
        rewritten.Write(written[(length + EmptyBody.Length)..]);
        rewritten.Write(body);
        return rewritten.WrittenSpan.ToArray();
    }
}
