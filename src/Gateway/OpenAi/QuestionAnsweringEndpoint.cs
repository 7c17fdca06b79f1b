using Gpt2Orleans.Gateway.Auth;
using Gpt2Orleans.Gateway.Routing;

namespace Gpt2Orleans.Gateway.OpenAi;

/// <summary>
/// <c>POST /v1/question-answering</c> with <c>{"model", "question", "context", "max_answer_len"?}</c> → Hugging Face's
/// question-answering pipeline's answer: <c>{"answer", "start", "end", "score"}</c>, offsets in characters of the context.
/// </summary>
public static class QuestionAnsweringEndpoint
{
    public static async Task<IResult> Handle(HttpContext context, TenantAuthentication auth, ModelWorkers workers)
    {
        var (tenant, fields, model) = await ModelCall.ReadAsync(context, auth);
        string question = fields.RequiredString("question");
        string text = fields.RequiredString("context");
        int? maxAnswerLength = fields.Integer("max_answer_len", 1, 512); // null: the pipeline's default
        var (worker, _) = await workers.PickAsync(model, tenant);
        var answer = await worker.AnswerQuestion(tenant, question, text, maxAnswerLength);
        return Results.Json(new { @object = "question_answer", model, answer = answer.Answer, start = answer.Start, end = answer.End, score = answer.Score });
    }
}
