using System.Text.Json;
using Gpt2Orleans.Grains;

namespace Gpt2Orleans.Gateway.Errors;

/// <summary>
/// Turns every failure into OpenAI's error object with the right status: the cluster's errors by kind, bad JSON as
/// 400, an oversized body as 413, and anything unexpected as a 500 that says nothing of the internals (never a
/// stack trace). Client mistakes never become a 500. Requests are admitted before a stream starts (see
/// <c>AdmittedStream</c>); a failure after its first byte ends the stream with the same error object as a last
/// <c>data:</c> event, which OpenAI's clients raise, rather than a cut connection.
/// </summary>
public sealed class ErrorHandling(RequestDelegate next, ILogger<ErrorHandling> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try { await next(context); }
        catch (Exception e) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            var error = ToApiError(e);
            if (error.Status >= 500 && e is not ApiException) logger.LogError(e, "Request {Path} failed", context.Request.Path);
            await WriteAsync(context, error);
        }
        catch (Exception e) when (context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested
                                  && context.Response.ContentType == "text/event-stream")
        {
            var error = ToApiError(e);
            logger.LogWarning(e, "Stream {Path} failed after it began", context.Request.Path);
            await context.Response.WriteAsync("data: " + JsonSerializer.Serialize(ErrorObject(error)) + "\n\n");
        }
    }

    private static object ErrorObject(ApiException error) => new { error = new { message = error.Message, type = error.Type, param = error.Param, code = error.Code } };

    /// <summary>The error object as UTF-8 JSON, for a body written below ASP.NET Core (<see cref="RejectionRewritingWriter"/>).</summary>
    public static byte[] ErrorBody(ApiException error) => JsonSerializer.SerializeToUtf8Bytes(ErrorObject(error));

    public static ApiException ToApiError(Exception e) => e switch
    {
        ApiException api => api,
        InvalidRequestException invalid => ApiException.BadRequest(ApiNames.InMessage(invalid.Message), ApiNames.Of(invalid.Parameter)),
        SessionNotFoundException missing => ApiException.NotFound(missing.Message, "session_id"),
        ModelUnavailableException unavailable => new ApiException(503, unavailable.Message, "service_unavailable", "model", "model_unavailable", Math.Max(1, unavailable.RetryAfterSeconds)),
        ConflictException conflict => new ApiException(409, conflict.Message, "invalid_request_error", conflict.Parameter, "conflict"),
        QuotaExceededException quota => new ApiException(403, quota.Message, "insufficient_quota", quota.Parameter, "quota_exceeded"),
        RetryLaterException retry => new ApiException(429, retry.Message, "rate_limit_exceeded", null, "rate_limit_exceeded", Math.Max(1, retry.RetryAfterSeconds)),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => new ApiException(413, "the request body is too large", "invalid_request_error", null, "request_too_large"),
        JsonException json => ApiException.BadRequest($"the request body is not valid JSON: {json.Message}", null, "invalid_json"),
        BadHttpRequestException bad => ApiException.BadRequest(bad.Message, null),
        _ => new ApiException(500, "the server failed to handle the request", "server_error"),
    };

    /// <summary>The error object for a response that has a status but no body (no route, or a method the route does not take).</summary>
    public static ApiException ForStatus(HttpContext context)
    {
        var request = context.Request;
        return context.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => ApiException.NotFound($"no route {request.Method} {request.Path}"),
            StatusCodes.Status405MethodNotAllowed => new ApiException(405, $"{request.Path} does not take {request.Method}" +
                (context.Response.Headers.Allow.Count > 0 ? $"; it takes {context.Response.Headers.Allow}" : ""), "invalid_request_error", null, "method_not_allowed"),
            int status => new ApiException(status, $"the request failed with status {status}", status >= 500 ? "server_error" : "invalid_request_error"),
        };
    }

    public static async Task WriteAsync(HttpContext context, ApiException error)
    {
        context.Response.StatusCode = error.Status;
        if (error.RetryAfterSeconds is { } seconds) context.Response.Headers.RetryAfter = ((int)Math.Ceiling(seconds)).ToString();
        await context.Response.WriteAsJsonAsync(ErrorObject(error));
    }
}
