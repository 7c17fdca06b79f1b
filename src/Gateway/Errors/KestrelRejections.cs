using System.IO.Pipelines;
using Gpt2Orleans.Gateway.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Gpt2Orleans.Gateway.Errors;

/// <summary>
/// OpenAI's error object on the responses Kestrel writes itself (400 for a request it cannot parse, 408 for headers
/// that come too slowly, 414, 431, ...), which otherwise have empty bodies: every endpoint's connections write through
/// a <see cref="RejectionRewritingWriter"/>, and the app tells it when a request is in the app.
/// </summary>
public static class KestrelRejections
{
    public static void Configure(KestrelServerOptions options) => options.ConfigureEndpointDefaults(endpoint => endpoint.Use(next => async connection =>
    {
        var transport = connection.Transport;
        var writer = new RejectionRewritingWriter(transport.Output, status =>
        {
            GatewayMetrics.ServerRejections.WithLabels(status.ToString()).Inc();
            return Describe(status, options.Limits);
        });
        connection.Transport = new Transport(transport.Input, writer);
        connection.Features.Set(writer);
        try { await next(connection); }
        finally { connection.Transport = transport; }
    }));

    /// <summary>Marks each request as in the app until its response completes (the first middleware).</summary>
    public static IApplicationBuilder UseKestrelRejectionBodies(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (context.Features.Get<RejectionRewritingWriter>() is { } writer)
        {
            writer.RequestStarted();
            context.Response.OnCompleted(() => { writer.RequestEnded(); return Task.CompletedTask; });
        }
        await next(context);
    });

    /// <summary>What a status Kestrel answers on its own means, with the limit that was passed.</summary>
    public static ApiException Describe(int status, KestrelServerLimits limits) => status switch
    {
        400 => Client(400, "the request is not valid HTTP/1.1 (a malformed request line, header or chunked body)", "invalid_http"),
        408 => Client(408, $"the request's headers did not arrive within {limits.RequestHeadersTimeout.TotalSeconds:0.###} s", "request_timeout"),
        411 => Client(411, "a request with a body needs a Content-Length or Transfer-Encoding: chunked header", "length_required"),
        413 => Client(413, "the request body is too large", "request_too_large"),
        414 => Client(414, $"the request line is longer than {limits.MaxRequestLineSize} bytes", "request_line_too_long"),
        431 => Client(431, $"the request headers are larger than {limits.MaxRequestHeadersTotalSize} bytes or more than {limits.MaxRequestHeaderCount} headers", "headers_too_large"),
        505 => new ApiException(505, "the HTTP version is not supported: use HTTP/1.1 or HTTP/2", "invalid_request_error", null, "http_version_not_supported"),
        < 500 => Client(status, $"the server refused the request with status {status}", "bad_request"),
        _ => new ApiException(status, "the server failed to handle the request", "server_error"),
    };

    private static ApiException Client(int status, string message, string code) => new(status, message, "invalid_request_error", null, code);

    private sealed record Transport(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
