namespace Gpt2Orleans.Gateway.Errors;

/// <summary>
/// An error answered as OpenAI answers it: an HTTP status and <c>{"error":{"message","type","param","code"}}</c>;
/// <see cref="RetryAfterSeconds"/> becomes a Retry-After header.
/// </summary>
public sealed class ApiException(int status, string message, string type, string? param = null, string? code = null, double? retryAfterSeconds = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public double? RetryAfterSeconds { get; } = retryAfterSeconds;

    public static ApiException BadRequest(string message, string? param, string? code = null) => new(400, message, "invalid_request_error", param, code);
    public static ApiException Unauthorized(string message) => new(401, message, "invalid_request_error", null, "invalid_api_key");
    public static ApiException NotFound(string message, string? param = null) => new(404, message, "invalid_request_error", param, "not_found");
    /// <summary>OpenAI's answer to a model it does not serve: 404 <c>model_not_found</c>.</summary>
    public static ApiException ModelNotFound(string model) => new(404, $"model '{model}' does not exist", "invalid_request_error", "model", "model_not_found");
}
